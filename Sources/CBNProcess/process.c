#define _GNU_SOURCE
#include "CBNProcess.h"
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

extern char **environ;

int bn_spawn_group(pid_t *pid, const char *path, char *const argv[], char *const envp[], const char *cwd,
                   int in_fd, int out_fd, int err_fd) {
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    int rc = posix_spawn_file_actions_init(&fa);
    if (rc != 0) return rc;
    rc = posix_spawnattr_init(&attr);
    if (rc != 0) { posix_spawn_file_actions_destroy(&fa); return rc; }
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    if (!rc) rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    if (!rc) rc = posix_spawnattr_setpgroup(&attr, 0);
    if (!rc) rc = posix_spawnattr_setsigdefault(&attr, &all);
    if (!rc) rc = posix_spawnattr_setsigmask(&attr, &none);
    if (!rc) rc = posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
    if (!rc) rc = posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
    if (!rc) rc = posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 29))
    if (!rc && cwd) rc = posix_spawn_file_actions_addchdir_np(&fa, cwd);
#else
    if (!rc && cwd) rc = ENOSYS;
#endif
    if (!rc) rc = posix_spawn(pid, path, &fa, &attr, argv, envp ? envp : environ);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    return rc;
}

int bn_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

static int signal_fd = -1;

static void to_pipe(int sig) {
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    if (signal_fd >= 0) (void)!write(signal_fd, &b, 1);
    errno = saved;
}

int bn_signals_to_pipe(int fd) {
    signal_fd = fd;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = to_pipe;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    sigset_t set;
    sigemptyset(&set);
    for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        if (sigaction(sigs[i], &sa, NULL) != 0) return -1;
        sigaddset(&set, sigs[i]);
    }
    // bnspec may have been started with these signals blocked (the mask is inherited through
    // exec): unblock them in this thread, so that a signal sent to bnspec is delivered at all.
    return pthread_sigmask(SIG_UNBLOCK, &set, NULL) == 0 ? 0 : -1;
}

int bn_become_subreaper(void) {
#ifdef __linux__
    return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
#else
    errno = ENOSYS;
    return -1;
#endif
}
