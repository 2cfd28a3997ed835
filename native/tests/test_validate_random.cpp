// Random arguments for the C ABI's validating entry points (cdas_dii_forward, cdas_dii_backward,
// cdas_lm_head_jsd; the checks in native/src/api/validate.cpp), in place of libFuzzer, which needs
// clang's -fsanitize=fuzzer (not installed where this was written; docs/fuzzing.md). Each round
// draws a valid call (small shapes, buffers of exactly the claimed size, a random dtype, random
// finite data, a random mask) and then at most one defect: a NULL argument, a bad dtype, a size
// <= 0, rank > dim, an example index out of range, NaN or infinity in one input, both or neither
// of source and values, a non-finite scalar. The call must succeed with finite outputs when there
// is no defect and fail with the defect's status and a one-line message naming the argument when
// there is one; a crash or an out-of-bounds access (under AddressSanitizer, or the emulator's
// guard pages) ends the run. Rounds: CDAS_VALIDATE_ROUNDS (default 1500 per entry point).
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "cdas.h"
#include "harness.h"
#include "test_util.h"

using namespace cdas_test;

namespace {

int rounds() {
    const char* env = std::getenv("CDAS_VALIDATE_ROUNDS");
    int n = env ? std::atoi(env) : 0;
    return n > 0 ? n : 1500;
}

// n elements of dtype with random finite values in [-2, 2].
typed_buffer random_typed(std::mt19937_64& rng, int32_t dtype, int64_t n) {
    std::uniform_real_distribution<double> u(-2.0, 2.0);
    std::vector<double> v(static_cast<size_t>(n));
    for (auto& x : v) x = u(rng);
    return to_dtype(dtype, v);
}

std::vector<float> random_f32(std::mt19937_64& rng, int64_t n) {
    std::uniform_real_distribution<float> u(-2.0f, 2.0f);
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& x : v) x = u(rng);
    return v;
}

// Writes a non-finite value of dtype at element i.
void spoil(int32_t dtype, void* data, int64_t i, bool nan) {
    float f = nan ? std::numeric_limits<float>::quiet_NaN() : -std::numeric_limits<float>::infinity();
    if (dtype == CDAS_DTYPE_F32) {
        std::memcpy(static_cast<uint8_t*>(data) + 4 * i, &f, 4);
    } else {
        uint16_t h = dtype == CDAS_DTYPE_BF16 ? cdas::cpu::f32_to_bf16(f) : cdas::cpu::f32_to_f16(f);
        std::memcpy(static_cast<uint8_t*>(data) + 2 * i, &h, 2);
    }
}

// The outcome a round must have: OK, or a failure whose message mentions `needle`.
struct expectation {
    cdas_status status = CDAS_STATUS_OK;
    std::string needle;
};

void check_outcome(const char* entry, int round, cdas_status got, const expectation& want) {
    std::string message = cdas_last_error();
    std::string where = std::string(entry) + " round " + std::to_string(round) + ": ";
    if (want.status == CDAS_STATUS_OK) {
        CHECK_MSG(got == CDAS_STATUS_OK, where + "a valid call failed (" + std::to_string(got) + "): " + message);
        CHECK_MSG(message.empty(), where + "success left a message: " + message);
        return;
    }
    CHECK_MSG(got == want.status, where + "want status " + std::to_string(want.status) + " (" + want.needle +
                                      "), got " + std::to_string(got) + ": " + message);
    CHECK_MSG(!message.empty() && message.find('\n') == std::string::npos,
              where + "the message is empty or spans lines: " + message);
    CHECK_MSG(message.find(want.needle) != std::string::npos,
              where + "the message lacks '" + want.needle + "': " + message);
}

bool all_finite(const std::vector<float>& v) {
    for (float x : v)
        if (!std::isfinite(x)) return false;
    return true;
}

void dii_rounds(bool backward) {
    context_handle ctx(CDAS_JSD_SCHEDULE_AUTO, 1);
    auto rng = make_rng(backward ? "validate_random_dii_backward" : "validate_random_dii_forward");
    std::uniform_int_distribution<int> pick(0, 99);
    const char* entry = backward ? "cdas_dii_backward" : "cdas_dii_forward";
    int n = rounds();
    for (int r = 0; r < n && failures_in_current() == 0; ++r) {
        int32_t dtype = int32_t(rng() % 3);
        int64_t rows = 1 + int64_t(rng() % 16), dim = 1 + int64_t(rng() % 24);
        int64_t rank = 1 + int64_t(rng() % uint64_t(dim)), examples = 1 + int64_t(rng() % 4);
        bool with_source = rng() % 2 == 0;
        typed_buffer h = random_typed(rng, dtype, rows * dim);
        std::vector<float> directions = random_f32(rng, (rank + 1) * dim);  // room for rank + 1 rows
        typed_buffer source = random_typed(rng, dtype, examples * dim);
        std::vector<float> values = random_f32(rng, examples * (rank + 1));
        std::vector<int32_t> example_index(static_cast<size_t>(rows));
        for (auto& e : example_index) e = int32_t(rng() % uint64_t(examples));
        std::vector<uint8_t> mask = random_mask(rng, rows);
        bool use_mask = rng() % 2 == 0;
        typed_buffer grad_out = random_typed(rng, dtype, rows * dim);
        typed_buffer h_out = random_typed(rng, dtype, rows * dim);
        std::vector<float> values_out(static_cast<size_t>(examples * (rank + 1)));
        std::vector<float> grad_directions(static_cast<size_t>((rank + 1) * dim));
        std::vector<float> grad_values(static_cast<size_t>(examples * (rank + 1)));

        const void* p_h = h.data();
        const float* p_dir = directions.data();
        const void* p_src = with_source ? source.data() : nullptr;
        const float* p_val = with_source ? nullptr : values.data();
        const int32_t* p_idx = example_index.data();
        void* p_out = h_out.data();
        const void* p_grad = grad_out.data();
        int32_t call_dtype = dtype;
        int64_t c_rows = rows, c_dim = dim, c_rank = rank, c_examples = examples;
        expectation want;
        int defect = pick(rng) < 30 ? -1 : int(rng() % 12);
        switch (defect) {
            case 0: p_h = nullptr; want = {CDAS_STATUS_INVALID_ARGUMENT, "h must not be NULL"}; break;
            case 1: p_dir = nullptr; want = {CDAS_STATUS_INVALID_ARGUMENT, "directions"}; break;
            case 2: p_idx = nullptr; want = {CDAS_STATUS_INVALID_ARGUMENT, "example_index"}; break;
            case 3:
                if (backward) { p_grad = nullptr; want = {CDAS_STATUS_INVALID_ARGUMENT, "grad_out"}; }
                else { p_out = nullptr; want = {CDAS_STATUS_INVALID_ARGUMENT, "h_out"}; }
                break;
            case 4: {
                int32_t bad[] = {-1, 3, 4, 99, std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max()};
                call_dtype = bad[rng() % 6];
                want = {CDAS_STATUS_INVALID_ARGUMENT, "dtype"};
                break;
            }
            case 5: {
                int64_t bad[] = {0, -1, std::numeric_limits<int64_t>::min()};
                int64_t v = bad[rng() % 3];
                const char* names[] = {"rows", "dim", "rank", "examples"};
                int which = int(rng() % 4);
                (which == 0 ? c_rows : which == 1 ? c_dim : which == 2 ? c_rank : c_examples) = v;
                // a smaller dim can make rank > dim; the size check comes first either way
                want = {CDAS_STATUS_INVALID_ARGUMENT, names[which]};
                break;
            }
            case 6:  // rejected before any data is read, so the buffers' sizes do not matter
                c_rank = dim + 1 + int64_t(rng() % 5);
                want = {CDAS_STATUS_INVALID_ARGUMENT, "rank must be <= dim"};
                break;
            case 7: {
                int64_t t = int64_t(rng() % uint64_t(rows));
                int32_t bad[] = {-1, int32_t(examples), int32_t(examples) + 5, std::numeric_limits<int32_t>::min(),
                                 std::numeric_limits<int32_t>::max()};
                example_index[size_t(t)] = bad[rng() % 5];
                want = {CDAS_STATUS_INVALID_ARGUMENT, "example_index[" + std::to_string(t) + "]"};
                break;
            }
            case 8: spoil(dtype, h.data(), int64_t(rng() % uint64_t(rows * dim)), rng() % 2); want = {CDAS_STATUS_NON_FINITE, "h contains"}; break;
            case 9: spoil(CDAS_DTYPE_F32, directions.data(), int64_t(rng() % uint64_t(rank * dim)), rng() % 2);
                want = {CDAS_STATUS_NON_FINITE, "directions contains"}; break;
            case 10:
                if (with_source) { spoil(dtype, source.data(), int64_t(rng() % uint64_t(examples * dim)), rng() % 2);
                    want = {CDAS_STATUS_NON_FINITE, "source contains"}; }
                else { spoil(CDAS_DTYPE_F32, values.data(), int64_t(rng() % uint64_t(examples * rank)), rng() % 2);
                    want = {CDAS_STATUS_NON_FINITE, "values contains"}; }
                break;
            case 11:
                if (rng() % 2) { p_src = source.data(); p_val = values.data(); want = {CDAS_STATUS_INVALID_ARGUMENT, "got both"}; }
                else { p_src = nullptr; p_val = nullptr; want = {CDAS_STATUS_INVALID_ARGUMENT, "got neither"}; }
                break;
            default: break;
        }
        if (backward && defect == -1 && rng() % 4 == 0) {
            spoil(dtype, grad_out.data(), int64_t(rng() % uint64_t(rows * dim)), true);
            want = {CDAS_STATUS_NON_FINITE, "grad_out contains"};
        }
        cdas_status s;
        if (!backward) {
            s = cdas_dii_forward(ctx.ptr, call_dtype, c_rows, c_dim, c_rank, c_examples, p_h, p_dir, p_src, p_val, p_idx,
                                 use_mask ? mask.data() : nullptr, p_out, rng() % 2 ? values_out.data() : nullptr);
        } else {
            s = cdas_dii_backward(ctx.ptr, call_dtype, c_rows, c_dim, c_rank, c_examples, p_h, p_dir, p_src, p_val, p_idx,
                                  use_mask ? mask.data() : nullptr, p_grad, rng() % 2 ? h_out.data() : nullptr,
                                  grad_directions.data(), rng() % 2 ? grad_values.data() : nullptr);
        }
        check_outcome(entry, r, s, want);
        if (s == CDAS_STATUS_OK) {
            std::vector<double> out = from_dtype(h_out, rows * dim);
            bool finite = true;
            for (double x : out) finite = finite && std::isfinite(x);
            CHECK_MSG(finite, std::string(entry) + " round " + std::to_string(r) + ": non-finite output from finite inputs");
            if (backward) CHECK(all_finite(grad_directions));
        }
    }
}

}  // namespace

TEST(validate_random_dii_forward) { dii_rounds(false); }

TEST(validate_random_dii_backward) { dii_rounds(true); }

TEST(validate_random_lm_head_jsd) {
    context_handle ctx(CDAS_JSD_SCHEDULE_AUTO, 1);
    auto rng = make_rng("validate_random_lm_head_jsd");
    std::uniform_int_distribution<int> pick(0, 99);
    int n = rounds();
    for (int r = 0; r < n && failures_in_current() == 0; ++r) {
        int32_t dtype = int32_t(rng() % 3);
        int64_t rows = 1 + int64_t(rng() % 8), dim = 1 + int64_t(rng() % 16), vocab = 1 + int64_t(rng() % 40);
        typed_buffer xs = random_typed(rng, dtype, rows * dim);
        typed_buffer xt = random_typed(rng, dtype, rows * dim);
        typed_buffer head = random_typed(rng, dtype, vocab * dim);
        std::vector<uint8_t> mask = random_mask(rng, rows);
        float softcap = rng() % 3 == 0 ? 30.0f : 0.0f;
        float grad_scale = 1.0f;
        float loss = -1.0f;
        std::vector<float> row_loss(static_cast<size_t>(rows)), grad(static_cast<size_t>(rows * dim));
        const void* p_xs = xs.data();
        const void* p_xt = xt.data();
        const void* p_head = head.data();
        float* p_loss = &loss;
        int32_t call_dtype = dtype;
        int64_t c_rows = rows, c_dim = dim, c_vocab = vocab;
        expectation want;
        int defect = pick(rng) < 30 ? -1 : int(rng() % 9);
        switch (defect) {
            case 0: p_xs = nullptr; want = {CDAS_STATUS_INVALID_ARGUMENT, "x_student"}; break;
            case 1: p_xt = nullptr; want = {CDAS_STATUS_INVALID_ARGUMENT, "x_teacher"}; break;
            case 2: p_head = nullptr; want = {CDAS_STATUS_INVALID_ARGUMENT, "head"}; break;
            case 3: p_loss = nullptr; want = {CDAS_STATUS_INVALID_ARGUMENT, "loss_out"}; break;
            case 4: call_dtype = rng() % 2 ? -7 : 3; want = {CDAS_STATUS_INVALID_ARGUMENT, "dtype"}; break;
            case 5: {
                int64_t v = rng() % 2 ? 0 : -int64_t(1 + rng() % 1000);
                int which = int(rng() % 3);
                const char* names[] = {"rows", "dim", "vocab"};
                (which == 0 ? c_rows : which == 1 ? c_dim : c_vocab) = v;
                want = {CDAS_STATUS_INVALID_ARGUMENT, names[which]};
                break;
            }
            case 6:
                if (rng() % 2) { softcap = std::numeric_limits<float>::quiet_NaN(); want = {CDAS_STATUS_NON_FINITE, "softcap"}; }
                else { grad_scale = std::numeric_limits<float>::infinity(); want = {CDAS_STATUS_NON_FINITE, "grad_scale"}; }
                break;
            case 7: {
                int which = int(rng() % 3);
                typed_buffer& b = which == 0 ? xs : which == 1 ? xt : head;
                int64_t count = which == 2 ? vocab * dim : rows * dim;
                spoil(dtype, b.data(), int64_t(rng() % uint64_t(count)), rng() % 2);
                const char* names[] = {"x_student contains", "x_teacher contains", "head contains"};
                want = {CDAS_STATUS_NON_FINITE, names[which]};
                break;
            }
            default: break;
        }
        cdas_status s = cdas_lm_head_jsd(ctx.ptr, call_dtype, c_rows, c_dim, c_vocab, p_xs, p_xt, p_head, softcap,
                                         rng() % 2 ? mask.data() : nullptr, grad_scale, p_loss,
                                         rng() % 2 ? row_loss.data() : nullptr, rng() % 2 ? grad.data() : nullptr);
        check_outcome("cdas_lm_head_jsd", r, s, want);
        if (s == CDAS_STATUS_OK) {
            CHECK_MSG(std::isfinite(loss) && loss >= -1e-6f && loss <= std::log(2.0f) + 1e-5f,
                      "cdas_lm_head_jsd round " + std::to_string(r) + ": loss " + std::to_string(loss) + " outside [0, ln 2]");
            CHECK(all_finite(grad) && all_finite(row_loss));
        }
    }
}
