/* The kernels-only libcdas (CDAS_WITH_TORCH=OFF, the build check-and-bench.sh makes on a GPU
 * machine): the kernels work, the entry points that need libtorch say UNSUPPORTED and why.
 * Run by benchmarks/gpu/test-check-and-bench.sh no-torch. Exit 0 when all holds. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cdas.h"

static int failures = 0;
#define EXPECT(cond, ...)                        \
    do {                                         \
        if (!(cond)) {                           \
            printf("FAIL %s: ", #cond);          \
            printf(__VA_ARGS__);                 \
            printf("\n");                        \
            ++failures;                          \
        }                                        \
    } while (0)

int main(void) {
    EXPECT((cdas_build_features() & CDAS_FEATURE_TORCH) == 0, "features %u", cdas_build_features());

    cdas_model_config config;
    cdas_status st = cdas_model_config_default(&config);
    EXPECT(st == CDAS_STATUS_UNSUPPORTED && strstr(cdas_last_error(), "built without libtorch"), "%d %s", st,
           cdas_last_error());
    cdas_model* model = (cdas_model*)1;
    st = cdas_model_create(&config, NULL, 0, &model);
    EXPECT(st == CDAS_STATUS_UNSUPPORTED && model == NULL, "%d %s", st, cdas_last_error());
    EXPECT(cdas_model_destroy(NULL) == CDAS_STATUS_OK, "destroy(NULL)");
    float x[4] = {1, 2, 3, 4}, loss = -1;
    st = cdas_baseline_lm_head_jsd_torch(1, 2, 2, x, x, x, 0.0f, NULL, 1.0f, &loss, NULL, NULL);
    EXPECT(st == CDAS_STATUS_UNSUPPORTED && strstr(cdas_last_error(), "cdas_baseline_lm_head_jsd_torch"), "%d %s", st,
           cdas_last_error());

    /* The kernels: LM head + JSD on a CPU context (identical student and teacher: loss 0). */
    cdas_context_options options;
    cdas_context* ctx = NULL;
    EXPECT(cdas_context_options_default(&options) == CDAS_STATUS_OK, "options");
    EXPECT(cdas_context_create(&options, &ctx) == CDAS_STATUS_OK, "%s", cdas_last_error());
    float xs[3 * 8], head[11 * 8], grad[3 * 8];
    for (int i = 0; i < 3 * 8; ++i) xs[i] = sinf((float)i);
    for (int i = 0; i < 11 * 8; ++i) head[i] = cosf((float)i) * 0.3f;
    st = cdas_lm_head_jsd(ctx, CDAS_DTYPE_F32, 3, 8, 11, xs, xs, head, 30.0f, NULL, 1.0f, &loss, NULL, grad);
    EXPECT(st == CDAS_STATUS_OK && fabsf(loss) < 1e-6f, "%d %s loss %g", st, cdas_last_error(), loss);
    cdas_context_destroy(ctx);

    printf("%s\n", failures ? "no-torch smoke: FAILED" : "no-torch smoke: ok");
    return failures ? 1 : 0;
}
