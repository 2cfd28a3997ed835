// Plain double-precision references of the two operations, written straight from the formulas in
// cdas.h with no blocking, chunking or numerical tricks beyond max-subtraction: the test oracle.
#pragma once

#include <cstdint>
#include <vector>

namespace cdas_ref {

struct dii_problem {
    int64_t rows, dim, rank, examples;
    std::vector<double> h;           // [T x d]
    std::vector<double> directions;  // [r x d]
    std::vector<double> source;      // [B x d], empty when values are given
    std::vector<double> values;      // [B x r], empty when source is given
    std::vector<int32_t> example_index;
    std::vector<uint8_t> mask;       // empty = every row
    // Direction sets: directions is then [sets x r x d] and example e uses block example_set[e];
    // grad_directions is [sets x r x d]. Empty = one set.
    int64_t sets = 1;
    std::vector<int32_t> example_set;
};

struct dii_result {
    std::vector<double> h_out, clamp;                           // forward
    std::vector<double> grad_h, grad_directions, grad_values;   // backward
};

dii_result dii_forward(const dii_problem& p);
dii_result dii_backward(const dii_problem& p, const std::vector<double>& grad_out);

struct jsd_problem {
    int64_t rows, dim, vocab;
    std::vector<double> x_student, x_teacher, head;
    double softcap = 0.0;
    std::vector<uint8_t> mask;
    double grad_scale = 1.0;
};

struct jsd_result {
    double loss;
    std::vector<double> row_loss, grad_student;
};

jsd_result lm_head_jsd(const jsd_problem& p);

}  // namespace cdas_ref
