/*
 * The host side of the kernel ABI (bnspec/bnspec_kernel.h): loads a kernel library, checks
 * it, and calls its entry points by dtype. Used by `bnspec library-host`, the child process
 * through which `bnspec audit --library` runs a library (spec/AUDIT.md §7). Not needed to
 * write a kernel library.
 */
#ifndef BNSPEC_KERNEL_HOST_H
#define BNSPEC_KERNEL_HOST_H

#include "bnspec/bnspec_kernel.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A loaded, checked kernel library. */
typedef struct bnspec_host_library bnspec_host_library;

/**
 * dlopens `path` (RTLD_NOW: unresolved symbols fail here) and resolves `prefix`bnspec_kernel_…
 * Checks: the ABI version equals BNSPEC_KERNEL_ABI_VERSION, describe succeeds, the supports
 * table names at least one op, and every (op, dtype) it names has its entry point.
 * Returns NULL with a one-line reason in `message` otherwise.
 */
bnspec_host_library *bnspec_host_open(const char *path, const char *prefix, char *message, size_t message_size);

/**
 * Releases what bnspec_host_open allocated. The library itself stays loaded for the life of
 * the process: unloading code that may have started threads or registered handlers is not safe.
 */
void bnspec_host_release(bnspec_host_library *lib);

const char *bnspec_host_name(const bnspec_host_library *lib);
const char *bnspec_host_version(const bnspec_host_library *lib);
uint32_t bnspec_host_features(const bnspec_host_library *lib);
int32_t bnspec_host_abi_version(const bnspec_host_library *lib);
/** The library's supports table, answered once at open (0 or 1). */
int32_t bnspec_host_supports(const bnspec_host_library *lib, int32_t op, int32_t dtype, int32_t layout);
/** The symbol name of op × dtype, e.g. "mylib_bnspec_kernel_train_f32". */
const char *bnspec_host_symbol(const bnspec_host_library *lib, int32_t op, int32_t dtype);

/** Entry points by dtype; pointers are those of bnspec_kernel.h for that dtype. */
int32_t bnspec_host_train(const bnspec_host_library *lib, int32_t dtype, const bnspec_problem *problem, const void *x,
                          const void *gamma, const void *beta, void *running_mean, void *running_var, void *y,
                          void *batch_mean, void *batch_var, char *message, size_t message_size);
int32_t bnspec_host_infer(const bnspec_host_library *lib, int32_t dtype, const bnspec_problem *problem, const void *x,
                          const void *gamma, const void *beta, const void *mean, const void *var, void *y,
                          char *message, size_t message_size);
int32_t bnspec_host_backward_train(const bnspec_host_library *lib, int32_t dtype, const bnspec_problem *problem,
                                   const void *x, const void *dy, const void *gamma, void *dx, void *dgamma,
                                   void *dbeta, char *message, size_t message_size);
int32_t bnspec_host_backward_infer(const bnspec_host_library *lib, int32_t dtype, const bnspec_problem *problem,
                                   const void *x, const void *dy, const void *gamma, const void *mean,
                                   const void *var, void *dx, void *dgamma, void *dbeta, char *message,
                                   size_t message_size);

/**
 * Installs handlers for SIGSEGV, SIGBUS, SIGFPE, SIGILL and SIGABRT (on an alternate stack, so
 * a stack overflow is caught too) that write one line to stderr — "library-host: the kernel
 * crashed: SIGSEGV (segmentation fault) <context>" — and then die of the same signal. The line
 * is the last stderr line the audit sees, so it becomes the case's failure detail.
 */
void bnspec_host_install_crash_report(void);
/** The context the crash line names, e.g. "in mylib_bnspec_kernel_train_f32 on case …". */
void bnspec_host_set_context(const char *context);
/**
 * Whether kernel code runs now (1 from the start, for the library's constructors). An exit()
 * while it does writes "library-host: the kernel called exit <context>" to stderr first (an
 * atexit handler the crash report installs); the host's own exits write nothing.
 */
void bnspec_host_set_kernel_running(int running);

#ifdef __cplusplus
}
#endif

#endif
