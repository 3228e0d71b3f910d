// The kernels' worker threads (declared in CBNKernels.h, used by BNKernels' parallelFor).
//
// Why not DispatchQueue.concurrentPerform alone: measured on this project's 2-core
// machine, waking a dispatch worker costs 30–50 µs per call (two pieces of 75 µs of
// work took 108–126 µs: tools/dispatch_overhead.swift), a third of an in-cache
// inference; and dispatch hands piece 0 to whichever thread asks first, so between calls
// half of each tensor changed cores (and caches). Here piece i always runs on worker i,
// and a worker spins for BN_POOL_SPIN_NS after a job before it sleeps, as OpenMP
// runtimes do (for 200 ms in Intel's, KMP_BLOCKTIME): back-to-back calls pay no wake-up. Workers live as long as
// the process (the package's libraries are static; code that dlcloses a build of them
// must first let 1 ms pass after its last kernel call).
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <time.h>
#include "CBNKernels.h"

/// How long an idle worker spins before it sleeps (1 ms: longer than an in-cache
/// kernel call and the single-threaded work a caller typically does between two).
#define BN_POOL_SPIN_NS 1000000L
#define BN_POOL_MAX_WORKERS 255

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    long generation;   // atomic: bumped once per job
    long pieces;       // the job (written before the bump, read after it)
    bn_piece_fn fn;
    void *ctx;
    long done;         // atomic: workers that have finished the current job
    int sleepers;      // atomic, changed under `lock`: workers waiting on `wake`
    int workers;       // workers started (only the pool's holder changes it)
    int busy;          // atomic: 1 while a caller holds the pool
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};

static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

/// In a forked child only the forking thread exists: no workers, and no caller holding
/// the pool (even if another parent thread held it at the fork).
static void reset_in_child(void) {
    pthread_mutex_t fresh_lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t fresh_wake = PTHREAD_COND_INITIALIZER;
    pool.lock = fresh_lock;
    pool.wake = fresh_wake;
    pool.workers = 0;
    pool.sleepers = 0;
    pool.busy = 0;
}

static void register_fork_handler(void) { pthread_atfork(NULL, NULL, reset_in_child); }

static inline void relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

static long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)t.tv_sec * 1000000000L + t.tv_nsec;
}

typedef struct { long piece, seen; } worker_start;

static void *worker(void *arg) {
    worker_start start = *(worker_start *)arg;
    free(arg);
    long me = start.piece, seen = start.seen;
    for (;;) {
        long g = __atomic_load_n(&pool.generation, __ATOMIC_ACQUIRE);
        long t0 = now_ns();
        for (unsigned spins = 1; g == seen; spins++) {
            relax();
            g = __atomic_load_n(&pool.generation, __ATOMIC_ACQUIRE);
            if (g == seen && spins % 256 == 0 && now_ns() - t0 > BN_POOL_SPIN_NS) {
                pthread_mutex_lock(&pool.lock);
                __atomic_add_fetch(&pool.sleepers, 1, __ATOMIC_SEQ_CST);
                while ((g = __atomic_load_n(&pool.generation, __ATOMIC_SEQ_CST)) == seen)
                    pthread_cond_wait(&pool.wake, &pool.lock);
                __atomic_sub_fetch(&pool.sleepers, 1, __ATOMIC_SEQ_CST);
                pthread_mutex_unlock(&pool.lock);
            }
        }
        seen = g;
        if (me < pool.pieces) pool.fn(pool.ctx, me);
        __atomic_add_fetch(&pool.done, 1, __ATOMIC_RELEASE);
    }
    return NULL;
}

int bn_pool_run(long pieces, bn_piece_fn fn, void *ctx) {
    if (pieces <= 1) {
        if (pieces == 1) fn(ctx, 0);
        return 0;
    }
    if (pieces - 1 > BN_POOL_MAX_WORKERS) return -1;
    pthread_once(&pool_once, register_fork_handler);
    if (__atomic_exchange_n(&pool.busy, 1, __ATOMIC_ACQUIRE)) return -1;  // another caller has it
    while (pool.workers < pieces - 1) {
        worker_start *start = malloc(sizeof *start);
        pthread_t thread;
        pthread_attr_t attr;
        if (!start) break;
        start->piece = pool.workers + 1;
        start->seen = __atomic_load_n(&pool.generation, __ATOMIC_RELAXED);
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int failed = pthread_create(&thread, &attr, worker, start);
        pthread_attr_destroy(&attr);
        if (failed) { free(start); break; }
        pool.workers++;
    }
    if (pool.workers < pieces - 1) {  // could not start enough threads
        __atomic_store_n(&pool.busy, 0, __ATOMIC_RELEASE);
        return -1;
    }
    pool.pieces = pieces;
    pool.fn = fn;
    pool.ctx = ctx;
    __atomic_store_n(&pool.done, 0, __ATOMIC_RELAXED);
    __atomic_add_fetch(&pool.generation, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&pool.sleepers, __ATOMIC_SEQ_CST) > 0) {
        pthread_mutex_lock(&pool.lock);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.lock);
    }
    fn(ctx, 0);
    // Wait for every worker (those with no piece report at once). Spin, then yield the
    // core: with more pieces than cores the workers need it.
    for (unsigned spins = 0; __atomic_load_n(&pool.done, __ATOMIC_ACQUIRE) < pool.workers; spins++) {
        if (spins < 4096) relax(); else sched_yield();
    }
    __atomic_store_n(&pool.busy, 0, __ATOMIC_RELEASE);
    return 0;
}
