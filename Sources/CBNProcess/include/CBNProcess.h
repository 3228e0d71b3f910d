#ifndef CBNPROCESS_H
#define CBNPROCESS_H

#include <sys/types.h>

/// Starts `path` with `argv` and `envp` (NULL-terminated; envp NULL: inherit) as the leader of a new
/// process group (posix_spawn with POSIX_SPAWN_SETPGROUP, group id = its pid), in folder `cwd`
/// (NULL: inherit), with `in_fd`, `out_fd`, `err_fd` as its stdin, stdout, stderr. Signal
/// dispositions are reset to the defaults and the signal mask emptied (bnspec ignores SIGPIPE and
/// catches SIGINT/SIGTERM/SIGHUP; an adapter must not inherit that). Returns 0 and sets *pid, or
/// an errno value.
int bn_spawn_group(pid_t *pid, const char *path, char *const argv[], char *const envp[], const char *cwd,
                   int in_fd, int out_fd, int err_fd);

/// Makes SIGINT, SIGTERM and SIGHUP write their number (one byte) to `fd` and return: the
/// async-signal-safe half of bnspec's cleanup on a signal (the other half reads `fd` on a thread).
/// Also unblocks the three in the calling thread (a blocked mask is inherited through exec).
/// Returns 0, or -1 with errno set.
int bn_signals_to_pipe(int fd);

/// pipe2(fds, O_CLOEXEC): a pipe whose ends are not inherited by children. Returns 0 or -1.
int bn_pipe_cloexec(int fds[2]);

/// prctl(PR_SET_CHILD_SUBREAPER, 1): orphaned descendants of this process (an adapter's grandchild
/// that left its process group with setsid()) become its children instead of init's, so bnspec
/// can end them. Returns 0, or -1 with errno set (not Linux: ENOSYS).
int bn_become_subreaper(void);

#endif
