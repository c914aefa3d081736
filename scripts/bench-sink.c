/*
 * bench-sink: a stand-in for Redis in make bench, and only there.
 *
 * It reads the exporter's pipelined commands, counts them by their RESP
 * framing (an array of bulk strings each) and answers each with an entry
 * id, as Redis answers XADD, storing nothing.  What it costs per entry is
 * a fraction of Redis's 8 us: the bench's "Redis stand-in" cases measure
 * the module with its shipping, without Redis's own CPU time taken from
 * the two CPUs wrk and the server share.  The tests never use it.
 *
 *   bench-sink PORT    listens on 127.0.0.1:PORT until killed
 */

#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>


#define SINK_CONNS  64
#define SINK_READ   (256 * 1024)

/* what Redis answers an XADD: the new entry's id as a bulk string */
#define SINK_REPLY      "$15\r\n1764000000000-0\r\n"
#define SINK_REPLY_LEN  (sizeof(SINK_REPLY) - 1)


enum {
    SINK_ARRAY = 0,     /* at "*N\r\n" */
    SINK_ARRAY_LEN,
    SINK_BULK,          /* at "$N\r\n" */
    SINK_BULK_LEN,
    SINK_BULK_DATA      /* N bytes and "\r\n" to skip */
};


typedef struct {
    int       state;
    uint64_t  num;      /* the number being read */
    uint64_t  args;     /* bulks left in this command */
    uint64_t  skip;     /* bytes left of this bulk, its CRLF included */
    uint64_t  owed;     /* reply bytes not written yet */
    size_t    phase;    /* bytes of the current reply written */
} sink_conn_t;


/* SINK_REPLIES replies back to back: every write starts within the first */
#define SINK_REPLIES  512

static char  sink_replies[SINK_REPLIES * SINK_REPLY_LEN];


/* the commands completed in p[0..n); -1 when the bytes are not RESP */
static long
sink_parse(sink_conn_t *c, const uint8_t *p, size_t n)
{
    long           done;
    const uint8_t *end;

    done = 0;
    end = p + n;

    while (p < end) {

        switch (c->state) {

        case SINK_ARRAY:
        case SINK_BULK:
            if (*p != (c->state == SINK_ARRAY ? '*' : '$')) {
                return -1;
            }

            c->num = 0;
            c->state++;
            p++;
            break;

        case SINK_ARRAY_LEN:
        case SINK_BULK_LEN:
            if (*p >= '0' && *p <= '9') {
                c->num = c->num * 10 + (uint64_t) (*p - '0');

                if (c->num > (1u << 30)) {
                    return -1;
                }

            } else if (*p == '\n') {
                if (c->state == SINK_ARRAY_LEN) {
                    c->args = c->num;

                    if (c->args == 0) {
                        return -1;
                    }

                    c->state = SINK_BULK;

                } else {
                    c->skip = c->num + 2;
                    c->state = SINK_BULK_DATA;
                }

            } else if (*p != '\r') {
                return -1;
            }

            p++;
            break;

        default: /* SINK_BULK_DATA */
            if ((uint64_t) (end - p) < c->skip) {
                c->skip -= (uint64_t) (end - p);
                p = end;
                break;
            }

            p += c->skip;

            if (--c->args == 0) {
                done++;
                c->state = SINK_ARRAY;

            } else {
                c->state = SINK_BULK;
            }

            break;
        }
    }

    return done;
}


/* writes what is owed, as far as the socket takes it; -1 on an error */
static int
sink_reply(int fd, sink_conn_t *c)
{
    size_t   n;
    ssize_t  w;

    while (c->owed) {
        n = sizeof(sink_replies) - c->phase;

        if (c->owed < n) {
            n = (size_t) c->owed;
        }

        w = write(fd, sink_replies + c->phase, n);

        if (w < 0) {
            return errno == EAGAIN || errno == EINTR ? 0 : -1;
        }

        c->owed -= (uint64_t) w;
        c->phase = (c->phase + (size_t) w) % SINK_REPLY_LEN;
    }

    return 0;
}


int
main(int argc, char **argv)
{
    int                 ls, fd, i, n, one;
    long                done;
    ssize_t             r;
    nfds_t              nfds;
    sink_conn_t         conns[SINK_CONNS + 1];
    struct pollfd       pfd[SINK_CONNS + 1];
    struct sockaddr_in  sin;
    static uint8_t      buf[SINK_READ];

    if (argc != 2 || atoi(argv[1]) <= 0 || atoi(argv[1]) > 65535) {
        fprintf(stderr, "usage: bench-sink PORT\n");
        return 2;
    }

    ls = socket(AF_INET, SOCK_STREAM, 0);
    one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t) atoi(argv[1]));
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    if (ls < 0 || bind(ls, (struct sockaddr *) &sin, sizeof(sin)) != 0
        || listen(ls, 16) != 0)
    {
        perror("bench-sink: 127.0.0.1");
        return 1;
    }

    for (i = 0; i < SINK_REPLIES; i++) {
        memcpy(sink_replies + i * SINK_REPLY_LEN, SINK_REPLY, SINK_REPLY_LEN);
    }

    pfd[0].fd = ls;
    pfd[0].events = POLLIN;
    nfds = 1;

    for ( ;; ) {
        if (poll(pfd, nfds, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }

            perror("bench-sink: poll");
            return 1;
        }

        if ((pfd[0].revents & POLLIN) && nfds <= SINK_CONNS) {
            fd = accept(ls, NULL, NULL);

            if (fd >= 0) {
                fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
                memset(&conns[nfds], 0, sizeof(sink_conn_t));
                pfd[nfds].fd = fd;
                pfd[nfds].events = POLLIN;
                nfds++;
            }
        }

        for (i = 1; i < (int) nfds; i++) {
            if (!pfd[i].revents) {
                continue;
            }

            n = 1;

            if (pfd[i].revents & POLLIN) {
                r = read(pfd[i].fd, buf, sizeof(buf));

                if (r > 0) {
                    done = sink_parse(&conns[i], buf, (size_t) r);
                    n = done >= 0;
                    conns[i].owed += (uint64_t) (n ? done : 0)
                                     * SINK_REPLY_LEN;

                } else {
                    n = r < 0 && (errno == EAGAIN || errno == EINTR);
                }

            } else if (pfd[i].revents & (POLLERR | POLLHUP)) {
                n = 0;
            }

            n = n && sink_reply(pfd[i].fd, &conns[i]) == 0;

            /* the socket took less than owed: wait until it takes more */
            pfd[i].events = POLLIN | (conns[i].owed ? POLLOUT : 0);

            if (!n) {
                /* closed, broken or not RESP: forget the connection */
                close(pfd[i].fd);
                nfds--;
                pfd[i] = pfd[nfds];
                conns[i] = conns[nfds];
                i--;
            }
        }
    }
}
