#define _GNU_SOURCE
/* A bundled fleet service: the smallest real program a reload can be proven on.
 *
 * Its build (commit, timestamp) is compiled in (-DSM_COMMIT, -DSM_TIMESTAMP), so the bytes of
 * /proc/<pid>/exe say which build runs. It serves one Unix socket:
 *   "STATUS\n"      -> one JSON line (name, commit, timestamp, pid, dependency report), then close
 *   "HOLD <who>\n"  -> one JSON line {"pid":..,"commit":..}; the connection is then held open
 * With --depends SOCKET it holds a connection to its dependency and reconnects by itself when it
 * drops (every 20 ms), counting reconnects: a dependent reports its reconnection in its own words.
 * It exits when its socket path stops naming the socket it bound (a newer instance took the
 * path, or the fleet directory was removed), or when the --watch-pid process (the test run) is
 * gone, so an orphan never outlives its fleet, even when the test run itself was SIGKILLed.
 * Seeded bug: --no-reconnect (a dependent that never reconnects).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#ifndef SM_COMMIT
#define SM_COMMIT "unknown"
#endif
#ifndef SM_TIMESTAMP
#define SM_TIMESTAMP "unknown"
#endif

#define MAX_CLIENTS 64

static const char build_commit[] = SM_COMMIT;
static const char build_timestamp[] = SM_TIMESTAMP;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int connect_unix(const char *path) {
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    strncpy(addr.sun_path, path, sizeof addr.sun_path - 1);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Read one line (blocking, bounded by a 1 s poll per chunk). Returns its length or -1. */
static int read_line(int fd, char *buf, int size) {
    int n = 0;
    while (n < size - 1) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 1000) <= 0) return -1;
        ssize_t got = read(fd, buf + n, 1);
        if (got <= 0) return -1;
        if (buf[n] == '\n') break;
        n++;
    }
    buf[n] = 0;
    return n;
}

int main(int argc, char **argv) {
    const char *name = "service", *sock_path = NULL, *dep_path = NULL, *dep_name = "";
    int no_reconnect = 0;
    long watch_pid = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--name") && i + 1 < argc) name = argv[++i];
        else if (!strcmp(argv[i], "--socket") && i + 1 < argc) sock_path = argv[++i];
        else if (!strcmp(argv[i], "--depends") && i + 1 < argc) dep_path = argv[++i];
        else if (!strcmp(argv[i], "--depends-name") && i + 1 < argc) dep_name = argv[++i];
        else if (!strcmp(argv[i], "--no-reconnect")) no_reconnect = 1;
        else if (!strcmp(argv[i], "--watch-pid") && i + 1 < argc) watch_pid = atol(argv[++i]);
        else {
            fprintf(stderr, "%s: unknown argument %s\n", argv[0], argv[i]);
            return 2;
        }
    }
    if (!sock_path) {
        fprintf(stderr, "%s: --socket PATH is required\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    strncpy(addr.sun_path, sock_path, sizeof addr.sun_path - 1);
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    unlink(sock_path);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(lfd, 64) < 0) {
        perror("listen");
        return 1;
    }
    struct stat mine;
    if (stat(sock_path, &mine) < 0) return 1;

    int held[MAX_CLIENTS];
    int nheld = 0;
    int dep_fd = -1, connected = 0, ever_connected = 0, reconnects = 0, gave_up = 0;
    long dep_pid = 0;
    char dep_commit[128] = "";
    double next_try = 0, next_check = now() + 0.2;

    for (;;) {
        double t = now();
        if (dep_path && dep_fd < 0 && !gave_up && t >= next_try) {
            next_try = t + 0.02;
            int fd = connect_unix(dep_path);
            if (fd >= 0) {
                char line[512];
                dprintf(fd, "HOLD %s\n", name);
                if (read_line(fd, line, sizeof line) > 0 &&
                    sscanf(line, "{\"pid\":%ld,\"commit\":\"%127[^\"]\"", &dep_pid, dep_commit) == 2) {
                    dep_fd = fd;
                    connected = 1;
                    if (ever_connected) reconnects++;
                    ever_connected = 1;
                } else {
                    close(fd);
                }
            }
        }
        if (t >= next_check) {
            struct stat st;
            if (stat(sock_path, &st) < 0 || st.st_ino != mine.st_ino || st.st_dev != mine.st_dev)
                return 0; /* replaced or removed: this instance is an orphan now */
            if (watch_pid > 0 && kill((pid_t)watch_pid, 0) < 0 && errno == ESRCH)
                return 0; /* the test run that started the fleet is gone */
            next_check = t + 0.2;
        }

        struct pollfd fds[MAX_CLIENTS + 2];
        int nfds = 0;
        fds[nfds++] = (struct pollfd){.fd = lfd, .events = POLLIN};
        int dep_slot = -1;
        if (dep_fd >= 0) {
            dep_slot = nfds;
            fds[nfds++] = (struct pollfd){.fd = dep_fd, .events = POLLIN};
        }
        int held_base = nfds;
        for (int i = 0; i < nheld; i++) fds[nfds++] = (struct pollfd){.fd = held[i], .events = POLLIN};
        int timeout = (dep_path && dep_fd < 0 && !gave_up) ? 20 : 200;
        if (poll(fds, nfds, timeout) < 0 && errno != EINTR) return 1;

        if (dep_slot >= 0 && fds[dep_slot].revents) {
            char junk[64];
            if (read(dep_fd, junk, sizeof junk) <= 0) { /* the dependency went away */
                close(dep_fd);
                dep_fd = -1;
                connected = 0;
                if (no_reconnect) gave_up = 1;
            }
        }
        for (int i = nheld - 1; i >= 0; i--) {
            if (!fds[held_base + i].revents) continue;
            char junk[64];
            if (read(held[i], junk, sizeof junk) <= 0) {
                close(held[i]);
                held[i] = held[--nheld];
            }
        }
        if (fds[0].revents & POLLIN) {
            int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
            if (cfd < 0) continue;
            char line[256];
            if (read_line(cfd, line, sizeof line) < 0) {
                close(cfd);
                continue;
            }
            if (!strncmp(line, "HOLD", 4)) {
                dprintf(cfd, "{\"pid\":%ld,\"commit\":\"%s\"}\n", (long)getpid(), build_commit);
                if (nheld < MAX_CLIENTS) held[nheld++] = cfd;
                else close(cfd);
            } else {
                dprintf(cfd,
                        "{\"name\":\"%s\",\"commit\":\"%s\",\"timestamp\":\"%s\",\"pid\":%ld,"
                        "\"depends\":\"%s\",\"connected\":%s,\"dep_pid\":%ld,\"dep_commit\":\"%s\","
                        "\"reconnects\":%d,\"held\":%d}\n",
                        name, build_commit, build_timestamp, (long)getpid(), dep_name,
                        connected ? "true" : "false", connected ? dep_pid : 0L,
                        connected ? dep_commit : "", reconnects, nheld);
                close(cfd);
            }
        }
    }
}
