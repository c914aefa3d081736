# make deb: the Debian packages libnginx-mod-http-edgetrace,
# libapache2-mod-edgetrace and edgetrace-tools in $(BUILD)/deb, built from
# a copy of the tree by dpkg-buildpackage (scripts/deb, docs/install.md),
# then checked by lintian: an error fails the target.

.PHONY: deb

deb:
	@scripts/deps build deb
	scripts/deb . $(BUILD)/deb
	lintian --fail-on error --info $(BUILD)/deb/*.changes
