/*
 * The four entry points for one dtype, included by bn_kernel.c with
 *   SFX (f32, f16, bf16, f64), T (storage type), P (per-channel type), A (arithmetic type),
 *   LOAD(t) → A, STORE(a) → T, SQRT.
 * Statistics are two-pass: μ = Σx/m, then σ² = Σ(x − μ)²/m, accumulated in A in storage order.
 */
#define KERNEL(op) BN_CAT(BN_CAT(bnspec_kernel_, op), BN_CAT(_, SFX))

/* μ and biased σ² of channel c. */
static void BN_CAT(moments_, SFX)(const geometry *g, const T *x, int64_t c, A *mean, A *var) {
    const A m = (A)(g->n * g->s);
    A sum = 0;
    for (int64_t b = 0; b < g->n; b++)
        for (int64_t k = 0; k < g->s; k++) sum += LOAD(x[offset(g, b, c, k)]);
    A mu = sum / m, ss = 0;
#if BN_BUG == BN_BUG_ONE_PASS_VARIANCE
    for (int64_t b = 0; b < g->n; b++)
        for (int64_t k = 0; k < g->s; k++) {
            A v = LOAD(x[offset(g, b, c, k)]);
            ss += v * v;
        }
    *var = ss / m - mu * mu;
#else
    for (int64_t b = 0; b < g->n; b++)
        for (int64_t k = 0; k < g->s; k++) {
            A d = LOAD(x[offset(g, b, c, k)]) - mu;
            ss += d * d;
        }
    *var = ss / m;
#endif
    *mean = mu;
}

/* 1/√(σ² + eps). */
static A BN_CAT(inverse_std_, SFX)(A var, A eps) {
#if BN_BUG == BN_BUG_EPS_OUTSIDE_SQRT
    return (A)1 / (SQRT(var) + eps);
#else
    return (A)1 / SQRT(var + eps);
#endif
}

int32_t KERNEL(train)(const bnspec_problem *p, const T *x, const P *gamma, const P *beta, P *running_mean,
                      P *running_var, T *y, P *batch_mean, P *batch_var, char *message, size_t message_size) {
    geometry g;
    int32_t rc = read_problem(p, &g, message, message_size);
    if (rc != BNSPEC_OK) return rc;
    crash_on_the_chosen_case(p);
#if BN_BUG == BN_BUG_UNKNOWN_CODE
    return 7;
#endif
    const A eps = (A)(isnan(p->eps) ? 1e-5 : p->eps);
    const A w = (A)(isnan(p->batch_weight) ? 0.1 : p->batch_weight);
    const int32_t estimator = p->running_variance == BNSPEC_VARIANCE_DEFAULT ? BNSPEC_VARIANCE_UNBIASED : p->running_variance;
    const int32_t single = p->single_value == BNSPEC_SINGLE_VALUE_DEFAULT ? BNSPEC_SINGLE_VALUE_ERROR : p->single_value;
    const int64_t m = g.n * g.s;
    if (m == 1 && estimator == BNSPEC_VARIANCE_UNBIASED && single == BNSPEC_SINGLE_VALUE_ERROR) {
        say(message, message_size, "Expected more than 1 value per channel when training");
        return BNSPEC_REFUSED;
    }
    for (int64_t c = 0; c < g.c; c++) {
        A mean, var;
        BN_CAT(moments_, SFX)(&g, x, c, &mean, &var);
        const A scale = (A)gamma[c] * BN_CAT(inverse_std_, SFX)(var, eps), shift = (A)beta[c];
        for (int64_t b = 0; b < g.n; b++)
            for (int64_t k = 0; k < g.s; k++) {
                int64_t i = offset(&g, b, c, k);
                y[i] = STORE((LOAD(x[i]) - mean) * scale + shift);
            }
        batch_mean[c] = (P)mean;
        batch_var[c] = (P)var;
        if (running_mean && running_var) {
            A fed = var;
            if (estimator == BNSPEC_VARIANCE_UNBIASED)
                fed = m > 1 ? var * (A)m / (A)(m - 1) : (single == BNSPEC_SINGLE_VALUE_BETA ? var : (A)NAN);
            running_mean[c] = (P)(((A)1 - w) * (A)running_mean[c] + w * mean);
            running_var[c] = (P)(((A)1 - w) * (A)running_var[c] + w * fed);
        }
    }
    return BNSPEC_OK;
}

int32_t KERNEL(infer)(const bnspec_problem *p, const T *x, const P *gamma, const P *beta, const P *mean,
                      const P *var, T *y, char *message, size_t message_size) {
    geometry g;
    int32_t rc = read_problem(p, &g, message, message_size);
    if (rc != BNSPEC_OK) return rc;
    const A eps = (A)(isnan(p->eps) ? 1e-5 : p->eps);
    for (int64_t c = 0; c < g.c; c++) {
        const A mu = (A)mean[c], scale = (A)gamma[c] * BN_CAT(inverse_std_, SFX)((A)var[c], eps), shift = (A)beta[c];
        for (int64_t b = 0; b < g.n; b++)
            for (int64_t k = 0; k < g.s; k++) {
                int64_t i = offset(&g, b, c, k);
                y[i] = STORE((LOAD(x[i]) - mu) * scale + shift);
            }
    }
    return BNSPEC_OK;
}

/* dβ = Σ dy, dγ = Σ dy·x̂ and dx for channel c, given μ and r = 1/√(σ² + eps). */
static void BN_CAT(backward_channel_, SFX)(const geometry *g, const T *x, const T *dy, A gamma, A mu, A r, int training,
                                           int64_t c, T *dx, P *dgamma, P *dbeta) {
    A db = 0, dg = 0;
    for (int64_t b = 0; b < g->n; b++)
        for (int64_t k = 0; k < g->s; k++) {
            int64_t i = offset(g, b, c, k);
            A d = LOAD(dy[i]);
            db += d;
            dg += d * ((LOAD(x[i]) - mu) * r);
        }
    const A m = (A)(g->n * g->s), scale = gamma * r;
    for (int64_t b = 0; b < g->n; b++)
        for (int64_t k = 0; k < g->s; k++) {
            int64_t i = offset(g, b, c, k);
            A d = LOAD(dy[i]);
            if (training) d = d - db / m - ((LOAD(x[i]) - mu) * r) * (dg / m);
            dx[i] = STORE(scale * d);
        }
    dgamma[c] = (P)dg;
    dbeta[c] = (P)db;
}

int32_t KERNEL(backward_train)(const bnspec_problem *p, const T *x, const T *dy, const P *gamma, T *dx, P *dgamma,
                               P *dbeta, char *message, size_t message_size) {
    geometry g;
    int32_t rc = read_problem(p, &g, message, message_size);
    if (rc != BNSPEC_OK) return rc;
    const A eps = (A)(isnan(p->eps) ? 1e-5 : p->eps);
    for (int64_t c = 0; c < g.c; c++) {
        A mean, var;
        BN_CAT(moments_, SFX)(&g, x, c, &mean, &var);
        BN_CAT(backward_channel_, SFX)(&g, x, dy, (A)gamma[c], mean, BN_CAT(inverse_std_, SFX)(var, eps), 1, c, dx, dgamma, dbeta);
    }
    return BNSPEC_OK;
}

int32_t KERNEL(backward_infer)(const bnspec_problem *p, const T *x, const T *dy, const P *gamma, const P *mean,
                               const P *var, T *dx, P *dgamma, P *dbeta, char *message, size_t message_size) {
    geometry g;
    int32_t rc = read_problem(p, &g, message, message_size);
    if (rc != BNSPEC_OK) return rc;
    const A eps = (A)(isnan(p->eps) ? 1e-5 : p->eps);
    for (int64_t c = 0; c < g.c; c++)
        BN_CAT(backward_channel_, SFX)(&g, x, dy, (A)gamma[c], (A)mean[c], BN_CAT(inverse_std_, SFX)((A)var[c], eps), 0, c,
                                       dx, dgamma, dbeta);
    return BNSPEC_OK;
}

#undef KERNEL
#undef SFX
#undef T
#undef P
#undef A
#undef LOAD
#undef STORE
#undef SQRT
