/*
 * edgetrace serve: the web page's files, compiled into the binary
 * (docs/ui.md).  The table is generated at build time from cli/ui/ by
 * scripts/ui-assets; it ends with an entry whose path is NULL.
 */

#ifndef ET_CLI_SERVE_UI_H
#define ET_CLI_SERVE_UI_H

#include <stddef.h>


typedef struct {
    const char           *path;    /* "/" or "/ui/NAME" */
    const char           *type;    /* its Content-Type */
    const unsigned char  *data;
    size_t                len;
} et_serve_asset_t;


extern const et_serve_asset_t  et_serve_assets[];


#endif /* ET_CLI_SERVE_UI_H */
