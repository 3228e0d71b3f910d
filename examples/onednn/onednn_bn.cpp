// oneDNN's batch normalization behind the bnspec kernel ABI (bnspec/bnspec_kernel.h), so that
// `bnspec audit --library` runs the golden suite through it (tools/audit_onednn.sh).
//
// What is oneDNN's and what is this bridge's:
// - every number comes from oneDNN primitives: forward training (use_scale | use_shift; the
//   batch mean and biased variance are oneDNN's own outputs), forward inference and backward
//   in inference mode (use_global_stats), backward in training mode (prop_kind::backward, fed
//   the statistics of oneDNN's own forward-training pass on the same x, as a framework does);
// - oneDNN keeps no running statistics (a framework does): the description says so
//   (no BNSPEC_FEATURE_RUNNING_STATISTICS) and train never receives or writes them;
// - oneDNN has no default epsilon (a required parameter, float): a request for "the library's
//   default" eps is answered BNSPEC_UNSUPPORTED;
// - memory is the caller's, described with explicit strides (NCHW, NHWC, NC; any rank oneDNN
//   accepts), no reorder; dtypes f32 and, where this CPU's oneDNN implements them, bf16 and f16
//   (decided at run time by creating the primitive); per-channel vectors are f32, as oneDNN's.
#include <bnspec/bnspec_kernel.h>

#include <oneapi/dnnl/dnnl.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

namespace {
using namespace dnnl;
using tag = memory::format_tag;
using dt = memory::data_type;

engine &cpu() {
    static engine e(engine::kind::cpu, 0);
    return e;
}

int32_t report(char *message, size_t size, int32_t code, const std::string &text) {
    if (message && size) std::snprintf(message, size, "%s", text.c_str());
    return code;
}

// A dnnl::error becomes UNSUPPORTED when oneDNN has no implementation, FAILED otherwise.
int32_t from(const dnnl::error &e, char *message, size_t size) {
    return report(message, size, e.status == dnnl_unimplemented ? BNSPEC_UNSUPPORTED : BNSPEC_FAILED,
                  std::string("oneDNN: ") + e.what() + " (status " + std::to_string(int(e.status)) + ")");
}

// The caller's tensor as a oneDNN memory descriptor: logical dims [N, C, D…], strides of the layout.
memory::desc data_desc(const bnspec_problem *p, dt type) {
    const int r = p->rank;
    memory::dims dims(p->shape, p->shape + r), strides(r);
    memory::dim s = 1;
    if (p->layout == BNSPEC_LAYOUT_NCHW) {
        for (int i = r - 1; i >= 0; i--) { strides[i] = s; s *= dims[i]; }
    } else {  // NHWC, NC: C fastest, then the spatial dims, N outermost
        strides[1] = 1;
        s = dims[1];
        for (int i = r - 1; i >= 2; i--) { strides[i] = s; s *= dims[i]; }
        strides[0] = s;
    }
    return memory::desc(dims, type, strides);
}

memory::desc channel_desc(const bnspec_problem *p) { return memory::desc({p->shape[1]}, dt::f32, tag::x); }

memory wrap(const memory::desc &md, const void *ptr) { return memory(md, cpu(), const_cast<void *>(ptr)); }

// Checks the problem and returns eps as oneDNN takes it (float), or an error code.
int32_t prepare(const bnspec_problem *p, float *eps, char *message, size_t size) {
    if (!p || p->struct_size < sizeof(bnspec_problem))
        return report(message, size, BNSPEC_FAILED, "bnspec_problem older than this bridge's ABI");
    if (p->rank < 2 || p->rank > BNSPEC_MAX_RANK)
        return report(message, size, BNSPEC_UNSUPPORTED, "rank outside [2, 8]");
    if (std::isnan(p->eps))
        return report(message, size, BNSPEC_UNSUPPORTED,
                      "oneDNN has no default epsilon (a required parameter of the primitive)");
    *eps = float(p->eps);
    return BNSPEC_OK;
}

const normalization_flags scale_shift = normalization_flags::use_scale | normalization_flags::use_shift;
const normalization_flags global_stats = scale_shift | normalization_flags::use_global_stats;

batch_normalization_forward::primitive_desc forward_pd(const memory::desc &md, float eps, prop_kind kind,
                                                       normalization_flags flags) {
    return batch_normalization_forward::primitive_desc({kind, md, eps, flags}, cpu());
}

void run(const primitive &prim, const std::unordered_map<int, memory> &args) {
    stream s(cpu());
    prim.execute(s, args);
    s.wait();
}

// Forward training: y, and oneDNN's batch mean and (biased) variance.
int32_t train(const bnspec_problem *p, dt type, const void *x, const float *gamma, const float *beta, void *y,
              float *mean, float *var, char *message, size_t size) {
    float eps;
    if (int32_t rc = prepare(p, &eps, message, size)) return rc;
    try {
        auto md = data_desc(p, type), cmd = channel_desc(p);
        auto pd = forward_pd(md, eps, prop_kind::forward_training, scale_shift);
        run(batch_normalization_forward(pd), {{DNNL_ARG_SRC, wrap(md, x)}, {DNNL_ARG_DST, wrap(md, y)},
                                              {DNNL_ARG_SCALE, wrap(cmd, gamma)}, {DNNL_ARG_SHIFT, wrap(cmd, beta)},
                                              {DNNL_ARG_MEAN, wrap(cmd, mean)}, {DNNL_ARG_VARIANCE, wrap(cmd, var)}});
    } catch (const dnnl::error &e) {
        return from(e, message, size);
    } catch (const std::exception &e) {
        return report(message, size, BNSPEC_FAILED, e.what());
    }
    return BNSPEC_OK;
}

int32_t infer(const bnspec_problem *p, dt type, const void *x, const float *gamma, const float *beta, const float *mean,
              const float *var, void *y, char *message, size_t size) {
    float eps;
    if (int32_t rc = prepare(p, &eps, message, size)) return rc;
    try {
        auto md = data_desc(p, type), cmd = channel_desc(p);
        auto pd = forward_pd(md, eps, prop_kind::forward_inference, global_stats);
        run(batch_normalization_forward(pd), {{DNNL_ARG_SRC, wrap(md, x)}, {DNNL_ARG_DST, wrap(md, y)},
                                              {DNNL_ARG_SCALE, wrap(cmd, gamma)}, {DNNL_ARG_SHIFT, wrap(cmd, beta)},
                                              {DNNL_ARG_MEAN, wrap(cmd, mean)}, {DNNL_ARG_VARIANCE, wrap(cmd, var)}});
    } catch (const dnnl::error &e) {
        return from(e, message, size);
    } catch (const std::exception &e) {
        return report(message, size, BNSPEC_FAILED, e.what());
    }
    return BNSPEC_OK;
}

// Backward. Training mode: oneDNN's forward-training pass on x gives the statistics, then
// prop_kind::backward. Inference mode: use_global_stats with the given mean and variance.
int32_t backward(const bnspec_problem *p, dt type, bool training, const void *x, const void *dy, const float *gamma,
                 const float *mean_in, const float *var_in, void *dx, float *dgamma, float *dbeta, char *message,
                 size_t size) {
    float eps;
    if (int32_t rc = prepare(p, &eps, message, size)) return rc;
    try {
        auto md = data_desc(p, type), cmd = channel_desc(p);
        const size_t C = size_t(p->shape[1]);
        // beta only fills oneDNN 2.6's required SHIFT arguments: y is discarded and dβ = Σ dy does not read it.
        std::vector<float> mean(C), var(C), beta(C, 0.0f);
        normalization_flags flags = training ? scale_shift : global_stats;
        auto fwd = forward_pd(md, eps, prop_kind::forward_training, flags);
        if (training) {
            std::vector<char> y(md.get_size());
            run(batch_normalization_forward(fwd),
                {{DNNL_ARG_SRC, wrap(md, x)}, {DNNL_ARG_DST, wrap(md, y.data())}, {DNNL_ARG_SCALE, wrap(cmd, gamma)},
                 {DNNL_ARG_SHIFT, wrap(cmd, beta.data())}, {DNNL_ARG_MEAN, wrap(cmd, mean.data())},
                 {DNNL_ARG_VARIANCE, wrap(cmd, var.data())}});
        } else {
            std::memcpy(mean.data(), mean_in, C * sizeof(float));
            std::memcpy(var.data(), var_in, C * sizeof(float));
        }
        auto pd = batch_normalization_backward::primitive_desc({prop_kind::backward, md, md, eps, flags}, cpu(), fwd);
        run(batch_normalization_backward(pd),
            {{DNNL_ARG_SRC, wrap(md, x)}, {DNNL_ARG_DIFF_DST, wrap(md, dy)}, {DNNL_ARG_MEAN, wrap(cmd, mean.data())},
             {DNNL_ARG_VARIANCE, wrap(cmd, var.data())}, {DNNL_ARG_SCALE, wrap(cmd, gamma)},
             {DNNL_ARG_SHIFT, wrap(cmd, beta.data())}, {DNNL_ARG_DIFF_SRC, wrap(md, dx)}, {DNNL_ARG_DIFF_SCALE, wrap(cmd, dgamma)},
             {DNNL_ARG_DIFF_SHIFT, wrap(cmd, dbeta)}});
    } catch (const dnnl::error &e) {
        return from(e, message, size);
    } catch (const std::exception &e) {
        return report(message, size, BNSPEC_FAILED, e.what());
    }
    return BNSPEC_OK;
}

// Whether this CPU's oneDNN implements an op on a data type and layout: create the primitive
// descriptors for a small problem (the answer is cached).
bool implemented(int32_t op, dt type, int32_t layout) {
    bnspec_problem p{};
    p.struct_size = sizeof p;
    p.layout = layout;
    p.rank = layout == BNSPEC_LAYOUT_NC ? 2 : 4;
    p.shape[0] = 2; p.shape[1] = 16; p.shape[2] = 3; p.shape[3] = 3;
    try {
        auto md = data_desc(&p, type);
        switch (op) {
        case BNSPEC_OP_TRAIN: forward_pd(md, 1e-5f, prop_kind::forward_training, scale_shift); break;
        case BNSPEC_OP_INFER: forward_pd(md, 1e-5f, prop_kind::forward_inference, global_stats); break;
        default: {
            normalization_flags flags = op == BNSPEC_OP_BACKWARD_TRAIN ? scale_shift : global_stats;
            auto fwd = forward_pd(md, 1e-5f, prop_kind::forward_training, flags);
            batch_normalization_backward::primitive_desc({prop_kind::backward, md, md, 1e-5f, flags}, cpu(), fwd);
        }
        }
        return true;
    } catch (const dnnl::error &) {
        return false;
    }
}

std::string isa_name() {
    switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "isa " + std::to_string(int(dnnl_get_effective_cpu_isa()));
    }
}
}  // namespace

extern "C" {

int32_t bnspec_kernel_abi_version(void) { return BNSPEC_KERNEL_ABI_VERSION; }

int32_t bnspec_kernel_describe(bnspec_kernel_description *d, char *message, size_t size) {
    if (!d || d->struct_size < sizeof *d) return report(message, size, BNSPEC_FAILED, "description struct too old");
    static std::string version = [] {
        const dnnl_version_t *v = dnnl_version();
        const char *threads = std::getenv("OMP_NUM_THREADS");
        return std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch) +
               " (cpu isa " + isa_name() + ", OMP_NUM_THREADS=" + (threads ? threads : "unset") + ")";
    }();
    d->name = "oneDNN";
    d->version = version.c_str();
    d->features = 0;  // no running statistics (a framework keeps them), hence no cumulative average
    return BNSPEC_OK;
}

int32_t bnspec_kernel_supports(int32_t op, int32_t dtype, int32_t layout) {
    if (op < 0 || op >= BNSPEC_OP_COUNT || layout < 0 || layout >= BNSPEC_LAYOUT_COUNT) return 0;
    static int8_t known[BNSPEC_OP_COUNT][BNSPEC_DTYPE_COUNT][BNSPEC_LAYOUT_COUNT];  // 0 unknown, 1 yes, −1 no
    dt type;
    switch (dtype) {
    case BNSPEC_DTYPE_F32: type = dt::f32; break;
    case BNSPEC_DTYPE_BF16: type = dt::bf16; break;
    case BNSPEC_DTYPE_F16: type = dt::f16; break;
    default: return 0;  // oneDNN has no f64
    }
    int8_t &k = known[op][dtype][layout];
    if (k == 0) k = implemented(op, type, layout) ? 1 : -1;
    return k == 1;
}

#define BRIDGE(sfx, T, type)                                                                                    \
    int32_t bnspec_kernel_train_##sfx(const bnspec_problem *p, const T *x, const float *gamma, const float *beta, \
                                      float *running_mean, float *running_var, T *y, float *batch_mean,           \
                                      float *batch_var, char *message, size_t size) {                             \
        (void)running_mean; (void)running_var; /* NULL: oneDNN keeps no running statistics */                     \
        return train(p, type, x, gamma, beta, y, batch_mean, batch_var, message, size);                           \
    }                                                                                                             \
    int32_t bnspec_kernel_infer_##sfx(const bnspec_problem *p, const T *x, const float *gamma, const float *beta, \
                                      const float *mean, const float *var, T *y, char *message, size_t size) {    \
        return infer(p, type, x, gamma, beta, mean, var, y, message, size);                                       \
    }                                                                                                             \
    int32_t bnspec_kernel_backward_train_##sfx(const bnspec_problem *p, const T *x, const T *dy,                  \
                                               const float *gamma, T *dx, float *dgamma, float *dbeta,            \
                                               char *message, size_t size) {                                      \
        return backward(p, type, true, x, dy, gamma, nullptr, nullptr, dx, dgamma, dbeta, message, size);         \
    }                                                                                                             \
    int32_t bnspec_kernel_backward_infer_##sfx(const bnspec_problem *p, const T *x, const T *dy,                  \
                                               const float *gamma, const float *mean, const float *var, T *dx,    \
                                               float *dgamma, float *dbeta, char *message, size_t size) {         \
        return backward(p, type, false, x, dy, gamma, mean, var, dx, dgamma, dbeta, message, size);               \
    }

BRIDGE(f32, float, dt::f32)
BRIDGE(bf16, uint16_t, dt::bf16)
BRIDGE(f16, uint16_t, dt::f16)

}  // extern "C"
