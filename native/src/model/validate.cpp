#include "model/validate.h"

#include <cmath>
#include <string>
#include <tuple>
#include <utility>

#include "core/error.h"

namespace cdas::model {

namespace {

[[noreturn]] void invalid(const std::string& message) { fail(CDAS_STATUS_INVALID_ARGUMENT, message); }

std::vector<int64_t> lengths_of(const cdas_token_batch& batch, const std::vector<int64_t>& first) {
    std::vector<int64_t> lengths;
    for (int64_t b = 0; b < batch.batch; ++b) lengths.push_back(batch_row_length(batch, b, first[size_t(b)]));
    return lengths;
}

// start + count (+ 1 when each compared row's next token is read as a label) within each row's
// real tokens.
void require_rows(const std::vector<int64_t>& lengths, const int32_t* start, const int32_t* count, const char* start_name,
                  bool reads_next = false) {
    for (size_t b = 0; b < lengths.size(); ++b) {
        if (start[b] < 0 || int64_t(start[b]) + count[b] + (reads_next ? 1 : 0) > lengths[b])
            invalid(std::string(start_name) + "[" + std::to_string(b) + "] = " + std::to_string(start[b]) +
                    " with compare_count " + std::to_string(count[b]) +
                    (reads_next ? " and the next token of each row as the label" : "") + " leaves the row's " +
                    std::to_string(lengths[b]) + " real tokens");
    }
}

}  // namespace

std::vector<int64_t> validate_forward(const model_spec& spec, const cdas_token_batch* input,
                                      const cdas_intervention* intervention, int32_t hidden_layer,
                                      const float* hidden_out, const float* final_hidden_out, const float* logits_out) {
    std::vector<int64_t> first = validate_batch(spec, input, "input", false);
    if (!hidden_out && !final_hidden_out && !logits_out)
        invalid("give at least one of hidden_out, final_hidden_out and logits_out");
    if (hidden_out && (hidden_layer < 0 || hidden_layer >= spec.num_layers))
        invalid("hidden_layer = " + std::to_string(hidden_layer) + " is out of range: the model has blocks 0.." +
                std::to_string(spec.num_layers - 1));
    if (intervention) validate_intervention(spec, *intervention, lengths_of(*input, first), "intervention");
    return first;
}

std::vector<int64_t> validate_generate(const model_spec& spec, const cdas_token_batch* prompt,
                                       const cdas_intervention* intervention, const cdas_generation_options* options,
                                       const int32_t* new_tokens_out, const int32_t* lengths_out) {
    std::vector<int64_t> first = validate_batch(spec, prompt, "prompt", true);
    if (!options) invalid("options must not be NULL");
    validate_generation_options(spec, *options);
    if (!new_tokens_out) invalid("new_tokens_out must not be NULL");
    if (!lengths_out) invalid("lengths_out must not be NULL");
    if (intervention) validate_intervention(spec, *intervention, lengths_of(*prompt, first), "intervention");
    return first;
}

objective_rows validate_objective(const model_spec& spec, int32_t layer, int32_t rank, const float* directions,
                                  const cdas_objective_batch* batch, float grad_scale, const float* loss_out) {
    validate_directions(spec, layer, rank, directions, "layer", "rank", "directions");
    if (!batch) invalid("batch must not be NULL");
    if (!loss_out) invalid("loss_out must not be NULL");
    if (!std::isfinite(grad_scale)) fail(CDAS_STATUS_NON_FINITE, "grad_scale must be finite");
    if (batch->loss != CDAS_LOSS_JSD && batch->loss != CDAS_LOSS_JSD_COMPOSED && batch->loss != CDAS_LOSS_CROSS_ENTROPY)
        invalid("batch.loss = " + std::to_string(batch->loss) +
                " is not a cdas_objective_loss (0 JSD, 1 JSD_COMPOSED, 2 CROSS_ENTROPY)");
    const bool uses_target = batch->loss != CDAS_LOSS_CROSS_ENTROPY && !batch->teacher_hidden;
    objective_rows rows;
    rows.base_first = validate_batch(spec, &batch->base, "batch.base", false);
    rows.source_first = validate_batch(spec, &batch->source, "batch.source", false);
    if (uses_target) rows.target_first = validate_batch(spec, &batch->target, "batch.target", false);
    const int64_t B = batch->base.batch;
    if (batch->source.batch != B || (uses_target && batch->target.batch != B))
        invalid("batch.source.batch (" + std::to_string(batch->source.batch) +
                ") and batch.target.batch (" + std::to_string(batch->target.batch) +
                ") must equal batch.base.batch (" + std::to_string(B) + ")");
    const std::pair<const void*, const char*> required[] = {
        {batch->prefix_len, "batch.prefix_len"},     {batch->source_positions, "batch.source_positions"},
        {batch->base_start, "batch.base_start"},     {uses_target ? batch->target_start : batch->base_start, "batch.target_start"},
        {batch->compare_count, "batch.compare_count"}};
    for (auto [p, name] : required)
        if (!p) invalid(std::string(name) + " must not be NULL");
    int64_t compared = 0;
    for (int64_t b = 0; b < B; ++b) {
        if (batch->compare_count[b] < 0)
            invalid("batch.compare_count[" + std::to_string(b) + "] must be >= 0, got " +
                    std::to_string(batch->compare_count[b]));
        if (batch->prefix_len[b] < 0)
            invalid("batch.prefix_len[" + std::to_string(b) + "] must be >= 0, got " +
                    std::to_string(batch->prefix_len[b]));
        compared += batch->compare_count[b];
    }
    if (compared == 0) invalid("batch.compare_count adds up to 0 rows: nothing to compare");
    if (batch->direction_index) {
        const int32_t sets = batch->direction_count;
        if (sets < 1) invalid("batch.direction_count must be >= 1 with batch.direction_index, got " + std::to_string(sets));
        if (batch->pack_padding < 0)
            invalid("batch.pack_padding must be >= 0, got " + std::to_string(batch->pack_padding));
        std::vector<int64_t> rows_of_set(size_t(sets), 0);
        for (int64_t b = 0; b < B; ++b) {
            const int32_t k = batch->direction_index[b];
            if (k < 0 || k >= sets)
                invalid("batch.direction_index[" + std::to_string(b) + "] = " + std::to_string(k) + " is outside [0, " +
                        std::to_string(sets) + ") (batch.direction_count)");
            rows_of_set[size_t(k)] += batch->compare_count[b];
        }
        for (int32_t k = 0; k < sets; ++k)
            if (rows_of_set[size_t(k)] == 0)
                invalid("direction set " + std::to_string(k) + " of batch.direction_count " + std::to_string(sets) +
                        " has no compared row: every set needs an example with compare_count > 0");
        // set 0 was checked by validate_directions above
        const int64_t per_set = int64_t(rank) * spec.hidden;
        for (int64_t i = per_set; i < sets * per_set; ++i)
            if (!std::isfinite(directions[i]))
                fail(CDAS_STATUS_NON_FINITE, "directions holds a non-finite value in set " + std::to_string(i / per_set) +
                                                 " at row " + std::to_string(i % per_set / spec.hidden) + ", column " +
                                                 std::to_string(i % spec.hidden));
    }
    std::vector<int64_t> source_lengths = lengths_of(batch->source, rows.source_first);
    for (int64_t b = 0; b < B; ++b)
        if (batch->source_positions[b] < 0 || batch->source_positions[b] >= source_lengths[size_t(b)])
            invalid("batch.source_positions[" + std::to_string(b) + "] = " +
                    std::to_string(batch->source_positions[b]) + " is outside the row's " +
                    std::to_string(source_lengths[size_t(b)]) + " real tokens");
    // Given states: finite (they come from the caller's memory, e.g. a cache).
    const int64_t d = spec.hidden;
    const std::tuple<const float*, int64_t, const char*> states[] = {
        {batch->base_hidden, B * batch->base.seq_len * d, "batch.base_hidden"},
        {batch->source_hidden, B * d, "batch.source_hidden"},
        {batch->loss != CDAS_LOSS_CROSS_ENTROPY ? batch->teacher_hidden : nullptr, compared * d, "batch.teacher_hidden"}};
    for (auto [data, n, name] : states)
        if (data)
            for (int64_t i = 0; i < n; ++i)
                if (!std::isfinite(data[i]))
                    fail(CDAS_STATUS_NON_FINITE, std::string(name) + " holds a non-finite value at element " + std::to_string(i));
    if (batch->loss != CDAS_LOSS_CROSS_ENTROPY) {
        require_rows(lengths_of(batch->base, rows.base_first), batch->base_start, batch->compare_count, "batch.base_start");
        if (uses_target)
            require_rows(lengths_of(batch->target, rows.target_first), batch->target_start, batch->compare_count,
                         "batch.target_start");
    } else {
        require_rows(lengths_of(batch->base, rows.base_first), batch->base_start, batch->compare_count,
                     "batch.base_start", /*reads_next=*/true);
    }
    return rows;
}

std::vector<int64_t> validate_logprobs(const model_spec& spec, const cdas_intervention* intervention,
                                       const cdas_logprob_batch* batch, const float* upstream, const float* logprob_out,
                                       const float* grad_out) {
    if (!batch) invalid("batch must not be NULL");
    std::vector<int64_t> first = validate_batch(spec, &batch->tokens, "batch.tokens", false);
    if (!logprob_out) invalid("logprob_out must not be NULL");
    if (!batch->score_start) invalid("batch.score_start must not be NULL");
    if (!batch->score_count) invalid("batch.score_count must not be NULL");
    const int64_t B = batch->tokens.batch;
    const std::vector<int64_t> lengths = lengths_of(batch->tokens, first);
    for (int64_t b = 0; b < B; ++b) {
        // appended piece by piece: GCC 12's -Wrestrict misreads "[" + std::to_string(b) + "]" (GCC bug 105651)
        std::string row = "[";
        row += std::to_string(b);
        row += "]";
        const int32_t start = batch->score_start[b], count = batch->score_count[b];
        if (count < 0) invalid("batch.score_count" + row + " must be >= 0, got " + std::to_string(count));
        if (count > 0 && (start < 1 || int64_t(start) + count > lengths[size_t(b)]))
            invalid("batch.score_start" + row + " = " + std::to_string(start) + " with score_count " +
                    std::to_string(count) + " must lie within the row's " + std::to_string(lengths[size_t(b)]) +
                    " real tokens, starting at 1 or later (each scored token is predicted by the one before it)");
        if (batch->prefix_len && batch->prefix_len[b] < 0)
            invalid("batch.prefix_len" + row + " must be >= 0, got " + std::to_string(batch->prefix_len[b]));
    }
    if (upstream) {
        if (!intervention) invalid("upstream is given but intervention is NULL: there are no parameters to differentiate");
        if (!grad_out) invalid("grad_out must not be NULL when upstream is given");
        for (int64_t b = 0; b < B; ++b)
            if (!std::isfinite(upstream[b]))
                fail(CDAS_STATUS_NON_FINITE, "upstream[" + std::to_string(b) + "] is not finite");
    }
    if (intervention) {
        validate_intervention(spec, *intervention, lengths, "intervention");
        if (intervention->prefix_len)
            for (int64_t b = 0; b < B; ++b) {
                const int32_t want = batch->prefix_len ? batch->prefix_len[b] : 0;
                if (intervention->prefix_len[b] != want)
                    invalid("intervention.prefix_len[" + std::to_string(b) + "] = " +
                            std::to_string(intervention->prefix_len[b]) + " differs from batch.prefix_len (" +
                            std::to_string(want) + "); give it once, in the batch (or leave the intervention's NULL)");
            }
    }
    return first;
}

std::vector<int64_t> validate_batch(const model_spec& spec, const cdas_token_batch* batch, const char* name,
                                    bool left_padded) {
    const std::string n(name);
    if (!batch) invalid(n + " must not be NULL");
    if (batch->batch <= 0) invalid(n + ".batch must be > 0, got " + std::to_string(batch->batch));
    if (batch->seq_len <= 0) invalid(n + ".seq_len must be > 0, got " + std::to_string(batch->seq_len));
    if (!batch->tokens) invalid(n + ".tokens must not be NULL");
    const int64_t B = batch->batch, T = batch->seq_len;
    std::vector<int64_t> first(size_t(B), 0);
    for (int64_t b = 0; b < B; ++b) {
        for (int64_t t = 0; t < T; ++t) {
            int32_t id = batch->tokens[b * T + t];
            if (id < 0 || id >= spec.vocab)
                invalid(n + ".tokens[" + std::to_string(b) + ", " + std::to_string(t) + "] = " + std::to_string(id) +
                        " is outside the vocabulary [0, " + std::to_string(spec.vocab) + ")");
        }
        if (!batch->attention_mask) continue;
        const uint8_t* m = batch->attention_mask + b * T;
        int64_t begin = -1, end = -1;
        for (int64_t t = 0; t < T; ++t) {
            if (m[t] > 1)
                invalid(n + ".attention_mask[" + std::to_string(b) + ", " + std::to_string(t) + "] must be 0 or 1, got " +
                        std::to_string(m[t]));
            if (m[t]) {
                if (begin < 0) begin = t;
                else if (end >= 0)
                    invalid(n + ".attention_mask row " + std::to_string(b) +
                            ": the real tokens must be one contiguous run (padding on the left or right only)");
            } else if (begin >= 0 && end < 0) {
                end = t;
            }
        }
        if (begin < 0) invalid(n + ".attention_mask row " + std::to_string(b) + " has no real token");
        if (left_padded && end >= 0)
            invalid(n + ".attention_mask row " + std::to_string(b) +
                    " must be left-padded (its real tokens end at column " + std::to_string(end - 1) + ", not at " +
                    std::to_string(T - 1) + ")");
        first[size_t(b)] = begin;
    }
    // Every family refuses rows longer than its context before anything [T x T] is allocated:
    // learned positions have no embedding past it, and a rotary model's attention memory grows with
    // the square of the length (a few-MB prompt would ask for terabytes).
    for (int64_t b = 0; b < B; ++b) {
        int64_t len = batch_row_length(*batch, b, first[size_t(b)]);
        if (len > spec.max_positions)
            invalid(n + " row " + std::to_string(b) + " has " + std::to_string(len) + " tokens, more than " +
                    spec.traits().display + "'s max_positions (" + std::to_string(spec.max_positions) + ")");
    }
    return first;
}

int64_t batch_row_length(const cdas_token_batch& batch, int64_t row, int64_t first_real) {
    if (!batch.attention_mask) return batch.seq_len;
    int64_t t = first_real;
    while (t < batch.seq_len && batch.attention_mask[row * batch.seq_len + t]) ++t;
    return t - first_real;
}

void validate_directions(const model_spec& spec, int32_t layer, int32_t rank, const float* directions,
                         const char* layer_name, const char* rank_name, const char* directions_name) {
    if (layer < 0 || layer >= spec.num_layers)
        invalid(std::string(layer_name) + " = " + std::to_string(layer) + " is out of range: the model has blocks 0.." +
                std::to_string(spec.num_layers - 1));
    if (rank <= 0 || rank > spec.hidden)
        invalid(std::string(rank_name) + " must be in [1, " + std::to_string(spec.hidden) + "], got " + std::to_string(rank));
    if (!directions) invalid(std::string(directions_name) + " must not be NULL");
    for (int64_t i = 0; i < int64_t(rank) * spec.hidden; ++i)
        if (!std::isfinite(directions[i]))
            fail(CDAS_STATUS_NON_FINITE, std::string(directions_name) + " holds a non-finite value at row " +
                                             std::to_string(i / spec.hidden) + ", column " + std::to_string(i % spec.hidden));
}

void validate_intervention(const model_spec& spec, const cdas_intervention& iv, const std::vector<int64_t>& lengths,
                           const char* name) {
    const std::string n(name);
    validate_directions(spec, iv.layer, iv.rank, iv.directions, (n + ".layer").c_str(), (n + ".rank").c_str(),
                        (n + ".directions").c_str());
    if (iv.mode != CDAS_INTERVENTION_CLAMP && iv.mode != CDAS_INTERVENTION_ADD && iv.mode != CDAS_INTERVENTION_LOREFT &&
        iv.mode != CDAS_INTERVENTION_NULL_OUT)
        invalid(n + ".mode = " + std::to_string(iv.mode) +
                " is not a cdas_intervention_mode (0 CLAMP, 1 ADD, 2 LOREFT, 3 NULL_OUT)");
    const int64_t B = int64_t(lengths.size());
    const int64_t d = spec.hidden;
    if (iv.mode == CDAS_INTERVENTION_LOREFT || iv.mode == CDAS_INTERVENTION_NULL_OUT) {
        const std::string mode = iv.mode == CDAS_INTERVENTION_LOREFT ? "LOREFT" : "NULL_OUT";
        if (iv.values || iv.source_positions)
            invalid(n + ": mode " + mode + " takes neither values nor source_positions (both must be NULL)");
    } else {
        if ((iv.values == nullptr) == (iv.source_positions == nullptr))
            invalid(n + ": give exactly one of values and source_positions, got " + (iv.values ? "both" : "neither"));
        if (iv.mode == CDAS_INTERVENTION_ADD && !iv.values)
            invalid(n + ": mode ADD adds values (the amounts along each direction); source_positions is for CLAMP only");
    }
    if (iv.mode == CDAS_INTERVENTION_LOREFT) {
        if (!iv.loreft_weight) invalid(n + ".loreft_weight must not be NULL with mode LOREFT");
        if (!iv.loreft_bias) invalid(n + ".loreft_bias must not be NULL with mode LOREFT");
        for (int64_t i = 0; i < int64_t(iv.rank) * d; ++i)
            if (!std::isfinite(iv.loreft_weight[i]))
                fail(CDAS_STATUS_NON_FINITE, n + ".loreft_weight holds a non-finite value at row " + std::to_string(i / d) +
                                                 ", column " + std::to_string(i % d));
        for (int64_t k = 0; k < iv.rank; ++k)
            if (!std::isfinite(iv.loreft_bias[k]))
                fail(CDAS_STATUS_NON_FINITE, n + ".loreft_bias[" + std::to_string(k) + "] is not finite");
    } else if (iv.loreft_weight || iv.loreft_bias) {
        invalid(n + ": loreft_weight and loreft_bias are for mode LOREFT only (must be NULL with mode " +
                std::to_string(iv.mode) + ")");
    }
    if (iv.mode == CDAS_INTERVENTION_NULL_OUT)
        for (int64_t k = 0; k < iv.rank; ++k) {
            double norm = 0;
            for (int64_t i = 0; i < d; ++i) norm += double(iv.directions[k * d + i]) * iv.directions[k * d + i];
            if (!(norm > 0)) invalid(n + ".directions row " + std::to_string(k) + " is zero: mode NULL_OUT divides by |w_k|^2");
        }
    if (iv.values) {
        for (int64_t i = 0; i < B * iv.rank; ++i)
            if (!std::isfinite(iv.values[i]))
                fail(CDAS_STATUS_NON_FINITE, n + ".values[" + std::to_string(i / iv.rank) + ", " +
                                                 std::to_string(i % iv.rank) + "] is not finite");
    } else if (iv.source_positions) {
        for (int64_t b = 0; b < B; ++b) {
            int32_t p = iv.source_positions[b];
            if (p < 0 || p >= lengths[size_t(b)])
                invalid(n + ".source_positions[" + std::to_string(b) + "] = " + std::to_string(p) +
                        " is outside the row's " + std::to_string(lengths[size_t(b)]) + " real tokens");
        }
    }
    if (iv.prefix_len)
        for (int64_t b = 0; b < B; ++b)
            if (iv.prefix_len[b] < 0)
                invalid(n + ".prefix_len[" + std::to_string(b) + "] must be >= 0, got " + std::to_string(iv.prefix_len[b]));
}

void validate_generation_options(const model_spec& spec, const cdas_generation_options& o) {
    if (o.max_new_tokens <= 0) invalid("options.max_new_tokens must be > 0, got " + std::to_string(o.max_new_tokens));
    if (!std::isfinite(o.temperature) || o.temperature < 0)
        invalid("options.temperature must be finite and >= 0 (0 = greedy), got " + number_string(o.temperature));
    if (!(o.top_p > 0 && o.top_p <= 1)) invalid("options.top_p must be in (0, 1], got " + number_string(o.top_p));
    if (o.top_k < 0) invalid("options.top_k must be >= 0 (0 = off), got " + std::to_string(o.top_k));
    if (o.eos_count < 0) invalid("options.eos_count must be >= 0, got " + std::to_string(o.eos_count));
    if (o.eos_count > 0 && !o.eos_ids) invalid("options.eos_ids must not be NULL when eos_count > 0");
    for (int32_t i = 0; i < o.eos_count; ++i)
        if (o.eos_ids[i] < 0 || o.eos_ids[i] >= spec.vocab)
            invalid("options.eos_ids[" + std::to_string(i) + "] = " + std::to_string(o.eos_ids[i]) +
                    " is outside the vocabulary [0, " + std::to_string(spec.vocab) + ")");
}

}  // namespace cdas::model
