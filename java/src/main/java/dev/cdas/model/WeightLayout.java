package dev.cdas.model;

import java.util.ArrayList;
import java.util.List;

/** The transformers tensor names and shapes each family's checkpoint holds, derived from the config. */
final class WeightLayout {
    private WeightLayout() {}

    static List<WeightSpec> expected(ModelConfig c) {
        return c.family() == ModelFamily.GPT2 ? gpt2(c) : decoder(c);
    }

    /** Llama, Gemma-2, Qwen2 and Phi-3 share the "model." layout; they differ in the attention/MLP projections and norms. */
    private static List<WeightSpec> decoder(ModelConfig c) {
        long d = c.hiddenSize();
        long v = c.vocabSize();
        long q = (long) c.numHeads() * c.headDim();
        long kv = (long) c.numKvHeads() * c.headDim();
        long ffn = c.intermediateSize();
        List<WeightSpec> w = new ArrayList<>();
        w.add(WeightSpec.required("model.embed_tokens.weight", v, d));
        for (int i = 0; i < c.numLayers(); i++) {
            String p = "model.layers." + i + ".";
            w.add(WeightSpec.required(p + "input_layernorm.weight", d));
            w.add(WeightSpec.required(p + "post_attention_layernorm.weight", d));
            if (c.family() == ModelFamily.GEMMA2) {
                w.add(WeightSpec.required(p + "pre_feedforward_layernorm.weight", d));
                w.add(WeightSpec.required(p + "post_feedforward_layernorm.weight", d));
            }
            if (c.family() == ModelFamily.PHI3) {
                w.add(WeightSpec.required(p + "self_attn.qkv_proj.weight", q + 2 * kv, d));
            } else {
                w.add(WeightSpec.required(p + "self_attn.q_proj.weight", q, d));
                w.add(WeightSpec.required(p + "self_attn.k_proj.weight", kv, d));
                w.add(WeightSpec.required(p + "self_attn.v_proj.weight", kv, d));
                if (c.attentionBias()) {
                    w.add(WeightSpec.required(p + "self_attn.q_proj.bias", q));
                    w.add(WeightSpec.required(p + "self_attn.k_proj.bias", kv));
                    w.add(WeightSpec.required(p + "self_attn.v_proj.bias", kv));
                }
            }
            w.add(WeightSpec.required(p + "self_attn.o_proj.weight", d, q));
            if (c.attentionOutputBias()) {
                w.add(WeightSpec.required(p + "self_attn.o_proj.bias", d));
            }
            if (c.family() == ModelFamily.PHI3) {
                w.add(WeightSpec.required(p + "mlp.gate_up_proj.weight", 2 * ffn, d));
            } else {
                w.add(WeightSpec.required(p + "mlp.gate_proj.weight", ffn, d));
                w.add(WeightSpec.required(p + "mlp.up_proj.weight", ffn, d));
            }
            w.add(WeightSpec.required(p + "mlp.down_proj.weight", d, ffn));
            if (c.mlpBias()) {
                w.add(WeightSpec.required(p + "mlp.gate_proj.bias", ffn));
                w.add(WeightSpec.required(p + "mlp.up_proj.bias", ffn));
                w.add(WeightSpec.required(p + "mlp.down_proj.bias", d));
            }
        }
        w.add(WeightSpec.required("model.norm.weight", d));
        w.add(new WeightSpec("lm_head.weight", new long[] {v, d}, c.tieWordEmbeddings()));
        return List.copyOf(w);
    }

    /** GPT-2's Conv1D stores weights as [in, out]; save_pretrained prefixes "transformer." (the original hub files do not). */
    private static List<WeightSpec> gpt2(ModelConfig c) {
        long d = c.hiddenSize();
        long ffn = c.intermediateSize();
        List<WeightSpec> w = new ArrayList<>();
        w.add(WeightSpec.required("transformer.wte.weight", c.vocabSize(), d));
        w.add(WeightSpec.required("transformer.wpe.weight", c.maxPositions(), d));
        for (int i = 0; i < c.numLayers(); i++) {
            String p = "transformer.h." + i + ".";
            w.add(WeightSpec.required(p + "ln_1.weight", d));
            w.add(WeightSpec.required(p + "ln_1.bias", d));
            w.add(WeightSpec.required(p + "attn.c_attn.weight", d, 3 * d));
            w.add(WeightSpec.required(p + "attn.c_attn.bias", 3 * d));
            w.add(WeightSpec.required(p + "attn.c_proj.weight", d, d));
            w.add(WeightSpec.required(p + "attn.c_proj.bias", d));
            w.add(WeightSpec.required(p + "ln_2.weight", d));
            w.add(WeightSpec.required(p + "ln_2.bias", d));
            w.add(WeightSpec.required(p + "mlp.c_fc.weight", d, ffn));
            w.add(WeightSpec.required(p + "mlp.c_fc.bias", ffn));
            w.add(WeightSpec.required(p + "mlp.c_proj.weight", ffn, d));
            w.add(WeightSpec.required(p + "mlp.c_proj.bias", d));
        }
        w.add(WeightSpec.required("transformer.ln_f.weight", d));
        w.add(WeightSpec.required("transformer.ln_f.bias", d));
        w.add(new WeightSpec("lm_head.weight", new long[] {c.vocabSize(), d}, c.tieWordEmbeddings()));
        return List.copyOf(w);
    }
}
