/*
 * pause: the process of a pod's sandbox ("infra") container for scripts/cluster.sh.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * It holds the pod's namespaces open and does nothing else: it sleeps in pause(), reaps any
 * child re-parented to it (it is PID 1 of the pod when the pod shares its PID namespace), and
 * exits 0 on SIGINT or SIGTERM. `-v` prints a version line.
 *
 * Built by scripts/lib/cluster.sh with `gcc -static -O2`, the only file of a one-layer image.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char version_line[] = "synapsor pause 1\n";

static void on_stop(int sig) {
    (void)sig;
    _exit(0);
}

static void on_child(int sig) {
    int saved = errno;
    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    errno = saved;
}

static int install(int sig, void (*handler)(int), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    return sigaction(sig, &sa, NULL);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "-v") == 0) {
        return write(STDOUT_FILENO, version_line, sizeof version_line - 1) < 0;
    }
    if (install(SIGINT, on_stop, 0) != 0 || install(SIGTERM, on_stop, 0) != 0 ||
        install(SIGCHLD, on_child, SA_NOCLDSTOP | SA_RESTART) != 0) {
        return 1;
    }
    for (;;) {
        pause();
    }
}
