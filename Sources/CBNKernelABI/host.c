// The host side of the kernel ABI: dlopen, symbol checks, dispatch by dtype, crash report.
#define _GNU_SOURCE
#include "bnspec_kernel_host.h"

#include <dlfcn.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// The entry points' types, taken from the declarations (the header declares each once).
typedef __typeof__(&bnspec_kernel_abi_version) abi_version_fn;
typedef __typeof__(&bnspec_kernel_describe) describe_fn;
typedef __typeof__(&bnspec_kernel_supports) supports_fn;

static const char *const op_names[BNSPEC_OP_COUNT] = {"train", "infer", "backward_train", "backward_infer"};
static const char *const dtype_names[BNSPEC_DTYPE_COUNT] = {"f32", "f16", "bf16", "f64"};

struct bnspec_host_library {
    void *handle;
    int32_t abi_version;
    bnspec_kernel_description description;
    uint8_t supports[BNSPEC_OP_COUNT][BNSPEC_DTYPE_COUNT][BNSPEC_LAYOUT_COUNT];
    void *entry[BNSPEC_OP_COUNT][BNSPEC_DTYPE_COUNT];
    char symbol[BNSPEC_OP_COUNT][BNSPEC_DTYPE_COUNT][160];
};

static void say(char *message, size_t size, const char *format, ...) {
    if (!message || size == 0) return;
    va_list ap;
    va_start(ap, format);
    vsnprintf(message, size, format, ap);
    va_end(ap);
}

static void *resolve(void *handle, const char *prefix, const char *name, char *out, size_t out_size) {
    snprintf(out, out_size, "%s%s", prefix, name);
    dlerror();
    return dlsym(handle, out);
}

bnspec_host_library *bnspec_host_open(const char *path, const char *prefix, char *message, size_t message_size) {
    if (!prefix) prefix = "";
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        const char *e = dlerror();
        say(message, message_size, "cannot load the library (%s)", e ? e : "dlopen failed");
        return NULL;
    }
    bnspec_host_library *lib = calloc(1, sizeof *lib);
    if (!lib) { dlclose(handle); say(message, message_size, "out of memory"); return NULL; }
    lib->handle = handle;
    char name[160];
    abi_version_fn version = (abi_version_fn)resolve(handle, prefix, "bnspec_kernel_abi_version", name, sizeof name);
    if (!version) {
        say(message, message_size, "does not export %s (not a bnspec kernel library%s)", name,
            *prefix ? ", or built with another symbol prefix" : "; pass --symbol-prefix if its symbols have one");
        goto fail;
    }
    // A crash in these calls names them, not the constructors (an outside red team's, round F:
    // a segfault in bnspec_kernel_describe was reported "in a constructor of the library").
    bnspec_host_set_context("in bnspec_kernel_abi_version (while the library was opened)");
    lib->abi_version = version();
    if (lib->abi_version != BNSPEC_KERNEL_ABI_VERSION) {
        say(message, message_size, "was built for bnspec kernel ABI version %d; this bnspec speaks version %d",
            (int)lib->abi_version, BNSPEC_KERNEL_ABI_VERSION);
        goto fail;
    }
    describe_fn describe = (describe_fn)resolve(handle, prefix, "bnspec_kernel_describe", name, sizeof name);
    if (!describe) { say(message, message_size, "does not export %s (required by ABI version 1)", name); goto fail; }
    supports_fn supports = (supports_fn)resolve(handle, prefix, "bnspec_kernel_supports", name, sizeof name);
    if (!supports) { say(message, message_size, "does not export %s (required by ABI version 1)", name); goto fail; }
    lib->description.struct_size = sizeof lib->description;
    char why[512] = "";
    bnspec_host_set_context("in bnspec_kernel_describe (while the library was opened)");
    int32_t rc = describe(&lib->description, why, sizeof why);
    why[sizeof why - 1] = 0;
    if (rc != BNSPEC_OK) {
        say(message, message_size, "%sbnspec_kernel_describe returned %d: %s", prefix, (int)rc, why[0] ? why : "(no message)");
        goto fail;
    }
    if (!lib->description.name) lib->description.name = "kernel";
    if (!lib->description.version) lib->description.version = "?";
    int any = 0;
    for (int op = 0; op < BNSPEC_OP_COUNT; op++) {
        for (int dt = 0; dt < BNSPEC_DTYPE_COUNT; dt++) {
            int named = 0;
            for (int l = 0; l < BNSPEC_LAYOUT_COUNT; l++) {
                bnspec_host_set_context("in bnspec_kernel_supports (while the library was opened)");
                lib->supports[op][dt][l] = supports(op, dt, l) != 0;
                named |= lib->supports[op][dt][l];
            }
            char base[64];
            snprintf(base, sizeof base, "bnspec_kernel_%s_%s", op_names[op], dtype_names[dt]);
            lib->entry[op][dt] = resolve(handle, prefix, base, lib->symbol[op][dt], sizeof lib->symbol[op][dt]);
            if (named && !lib->entry[op][dt]) {
                say(message, message_size, "its supports table names %s %s but it does not export %s", op_names[op],
                    dtype_names[dt], lib->symbol[op][dt]);
                goto fail;
            }
            any |= named;
        }
    }
    if (!any) { say(message, message_size, "its supports table names no op × dtype × layout"); goto fail; }
    return lib;
fail:
    dlclose(handle);
    free(lib);
    return NULL;
}

void bnspec_host_release(bnspec_host_library *lib) { free(lib); }

const char *bnspec_host_name(const bnspec_host_library *lib) { return lib->description.name; }
const char *bnspec_host_version(const bnspec_host_library *lib) { return lib->description.version; }
uint32_t bnspec_host_features(const bnspec_host_library *lib) { return lib->description.features; }
int32_t bnspec_host_abi_version(const bnspec_host_library *lib) { return lib->abi_version; }

int32_t bnspec_host_supports(const bnspec_host_library *lib, int32_t op, int32_t dtype, int32_t layout) {
    if (op < 0 || op >= BNSPEC_OP_COUNT || dtype < 0 || dtype >= BNSPEC_DTYPE_COUNT || layout < 0 ||
        layout >= BNSPEC_LAYOUT_COUNT)
        return 0;
    return lib->supports[op][dtype][layout] && lib->entry[op][dtype];
}

const char *bnspec_host_symbol(const bnspec_host_library *lib, int32_t op, int32_t dtype) {
    if (op < 0 || op >= BNSPEC_OP_COUNT || dtype < 0 || dtype >= BNSPEC_DTYPE_COUNT) return "?";
    return lib->symbol[op][dtype];
}

#define NO_ENTRY()                                                                              \
    do {                                                                                        \
        say(message, message_size, "no entry point for this op and dtype");                     \
        return BNSPEC_UNSUPPORTED;                                                              \
    } while (0)

int32_t bnspec_host_train(const bnspec_host_library *lib, int32_t dtype, const bnspec_problem *p, const void *x,
                          const void *gamma, const void *beta, void *rm, void *rv, void *y, void *bm, void *bv,
                          char *message, size_t message_size) {
    if (dtype < 0 || dtype >= BNSPEC_DTYPE_COUNT || !lib->entry[BNSPEC_OP_TRAIN][dtype]) NO_ENTRY();
    void *e = lib->entry[BNSPEC_OP_TRAIN][dtype];
    switch (dtype) {
    case BNSPEC_DTYPE_F32: return ((__typeof__(&bnspec_kernel_train_f32))e)(p, x, gamma, beta, rm, rv, y, bm, bv, message, message_size);
    case BNSPEC_DTYPE_F16: return ((__typeof__(&bnspec_kernel_train_f16))e)(p, x, gamma, beta, rm, rv, y, bm, bv, message, message_size);
    case BNSPEC_DTYPE_BF16: return ((__typeof__(&bnspec_kernel_train_bf16))e)(p, x, gamma, beta, rm, rv, y, bm, bv, message, message_size);
    default: return ((__typeof__(&bnspec_kernel_train_f64))e)(p, x, gamma, beta, rm, rv, y, bm, bv, message, message_size);
    }
}

int32_t bnspec_host_infer(const bnspec_host_library *lib, int32_t dtype, const bnspec_problem *p, const void *x,
                          const void *gamma, const void *beta, const void *mean, const void *var, void *y,
                          char *message, size_t message_size) {
    if (dtype < 0 || dtype >= BNSPEC_DTYPE_COUNT || !lib->entry[BNSPEC_OP_INFER][dtype]) NO_ENTRY();
    void *e = lib->entry[BNSPEC_OP_INFER][dtype];
    switch (dtype) {
    case BNSPEC_DTYPE_F32: return ((__typeof__(&bnspec_kernel_infer_f32))e)(p, x, gamma, beta, mean, var, y, message, message_size);
    case BNSPEC_DTYPE_F16: return ((__typeof__(&bnspec_kernel_infer_f16))e)(p, x, gamma, beta, mean, var, y, message, message_size);
    case BNSPEC_DTYPE_BF16: return ((__typeof__(&bnspec_kernel_infer_bf16))e)(p, x, gamma, beta, mean, var, y, message, message_size);
    default: return ((__typeof__(&bnspec_kernel_infer_f64))e)(p, x, gamma, beta, mean, var, y, message, message_size);
    }
}

int32_t bnspec_host_backward_train(const bnspec_host_library *lib, int32_t dtype, const bnspec_problem *p,
                                   const void *x, const void *dy, const void *gamma, void *dx, void *dgamma,
                                   void *dbeta, char *message, size_t message_size) {
    if (dtype < 0 || dtype >= BNSPEC_DTYPE_COUNT || !lib->entry[BNSPEC_OP_BACKWARD_TRAIN][dtype]) NO_ENTRY();
    void *e = lib->entry[BNSPEC_OP_BACKWARD_TRAIN][dtype];
    switch (dtype) {
    case BNSPEC_DTYPE_F32: return ((__typeof__(&bnspec_kernel_backward_train_f32))e)(p, x, dy, gamma, dx, dgamma, dbeta, message, message_size);
    case BNSPEC_DTYPE_F16: return ((__typeof__(&bnspec_kernel_backward_train_f16))e)(p, x, dy, gamma, dx, dgamma, dbeta, message, message_size);
    case BNSPEC_DTYPE_BF16: return ((__typeof__(&bnspec_kernel_backward_train_bf16))e)(p, x, dy, gamma, dx, dgamma, dbeta, message, message_size);
    default: return ((__typeof__(&bnspec_kernel_backward_train_f64))e)(p, x, dy, gamma, dx, dgamma, dbeta, message, message_size);
    }
}

int32_t bnspec_host_backward_infer(const bnspec_host_library *lib, int32_t dtype, const bnspec_problem *p,
                                   const void *x, const void *dy, const void *gamma, const void *mean,
                                   const void *var, void *dx, void *dgamma, void *dbeta, char *message,
                                   size_t message_size) {
    if (dtype < 0 || dtype >= BNSPEC_DTYPE_COUNT || !lib->entry[BNSPEC_OP_BACKWARD_INFER][dtype]) NO_ENTRY();
    void *e = lib->entry[BNSPEC_OP_BACKWARD_INFER][dtype];
    switch (dtype) {
    case BNSPEC_DTYPE_F32: return ((__typeof__(&bnspec_kernel_backward_infer_f32))e)(p, x, dy, gamma, mean, var, dx, dgamma, dbeta, message, message_size);
    case BNSPEC_DTYPE_F16: return ((__typeof__(&bnspec_kernel_backward_infer_f16))e)(p, x, dy, gamma, mean, var, dx, dgamma, dbeta, message, message_size);
    case BNSPEC_DTYPE_BF16: return ((__typeof__(&bnspec_kernel_backward_infer_bf16))e)(p, x, dy, gamma, mean, var, dx, dgamma, dbeta, message, message_size);
    default: return ((__typeof__(&bnspec_kernel_backward_infer_f64))e)(p, x, dy, gamma, mean, var, dx, dgamma, dbeta, message, message_size);
    }
}

// ---- Crash report ---------------------------------------------------------------------

#define LOAD_CONTEXT "in a constructor of the library (while it loaded)"
static char crash_context[1024] = LOAD_CONTEXT;
static volatile sig_atomic_t crash_context_length = sizeof LOAD_CONTEXT - 1;

void bnspec_host_set_context(const char *context) {
    crash_context_length = 0;  // a signal between the two stores prints nothing rather than a torn text
    size_t n = strlen(context);
    if (n >= sizeof crash_context) n = sizeof crash_context - 1;
    memcpy(crash_context, context, n);
    crash_context[n] = 0;
    crash_context_length = (sig_atomic_t)n;
}

static void put(const char *s, size_t n) {
    while (n > 0) {
        ssize_t w = write(2, s, n);
        if (w <= 0) return;
        s += w;
        n -= (size_t)w;
    }
}

static void on_crash(int sig) {
    const char *what = sig == SIGSEGV ? "SIGSEGV (segmentation fault)"
                       : sig == SIGBUS ? "SIGBUS (bus error)"
                       : sig == SIGFPE ? "SIGFPE (arithmetic exception)"
                       : sig == SIGILL ? "SIGILL (illegal instruction)"
                       : sig == SIGABRT ? "SIGABRT (abort)"
                                        : "a fatal signal";
    static const char head[] = "\nlibrary-host: the kernel crashed: ";
    put(head, sizeof head - 1);
    put(what, strlen(what));
    put(" ", 1);
    put(crash_context, (size_t)crash_context_length);
    put("\n", 1);
    signal(sig, SIG_DFL);
    raise(sig);
}

// 1 while kernel code runs: the library's constructors (from the start), then each entry point.
static volatile sig_atomic_t kernel_running = 1;

void bnspec_host_set_kernel_running(int running) { kernel_running = running ? 1 : 0; }

// A kernel that calls exit() (its own, or a library's it uses) ends the host with a status the
// audit cannot tell from the host's own: this line names the entry point (an outside red team's:
// "adapter exited with status 0" named nothing).
static void on_exit_in_kernel(void) {
    if (!kernel_running) return;
    static const char head[] = "\nlibrary-host: the kernel called exit ";
    put(head, sizeof head - 1);
    put(crash_context, (size_t)crash_context_length);
    put("\n", 1);
}

void bnspec_host_install_crash_report(void) {
    static int exit_report_registered = 0;
    if (!exit_report_registered) exit_report_registered = atexit(on_exit_in_kernel) == 0;
    static char alternate_stack[1 << 16];
    stack_t ss = {.ss_sp = alternate_stack, .ss_size = sizeof alternate_stack, .ss_flags = 0};
    sigaltstack(&ss, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_crash;
    sa.sa_flags = SA_ONSTACK | SA_NODEFER | SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    const int signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
    for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++) sigaction(signals[i], &sa, NULL);
}
