package dev.cdas.model;

import dev.cdas.io.Tensor;
import java.util.ArrayList;
import java.util.List;

/**
 * A plain double-precision forward pass for the supported families, written from the
 * transformers modelling code: the readable spec the native runtime is checked against, and the
 * proof that {@link ModelConfig}'s normalised fields mean what they say. Slow on purpose (no
 * batching, no cache); for fixtures of a few thousand parameters only.
 */
final class ReferenceDecoder {
    /** hidden.get(i) is HF's hidden_states[i]: 0 = embeddings, i = output of block i-1, the last after the final norm. */
    record Result(double[][] logits, List<double[][]> hidden) {}

    private final ModelConfig c;
    private final CheckpointValidator.Weights w;

    ReferenceDecoder(ModelConfig config, CheckpointValidator.Weights weights) {
        this.c = config;
        this.w = weights;
    }

    Result forward(long[] ids) {
        int t = ids.length;
        int d = c.hiddenSize();
        boolean gpt2 = c.family() == ModelFamily.GPT2;
        double[][] emb = mat(w.get(gpt2 ? "transformer.wte.weight" : "model.embed_tokens.weight"));
        double[][] x = new double[t][];
        for (int i = 0; i < t; i++) {
            x[i] = emb[(int) ids[i]].clone();
            for (int j = 0; j < d; j++) {
                x[i][j] *= c.embeddingMultiplier();
            }
            if (gpt2) {
                double[] pos = mat(w.get("transformer.wpe.weight"))[i];
                for (int j = 0; j < d; j++) {
                    x[i][j] += pos[j];
                }
            }
        }
        List<double[][]> hidden = new ArrayList<>();
        hidden.add(copy(x));
        for (int l = 0; l < c.numLayers(); l++) {
            x = gpt2 ? gpt2Block(x, l) : decoderBlock(x, l);
            hidden.add(copy(x));
        }
        x = gpt2 ? layerNorm(x, "transformer.ln_f") : rmsNorm(x, "model.norm.weight");
        hidden.set(hidden.size() - 1, copy(x));
        double[][] logits = linear(x, mat(w.lmHead(c)), null);
        if (c.finalLogitSoftcap().isPresent()) {
            softcap(logits, c.finalLogitSoftcap().getAsDouble());
        }
        return new Result(logits, hidden);
    }

    // ---- llama / gemma2 / qwen2 / phi3

    private double[][] decoderBlock(double[][] x, int l) {
        String p = "model.layers." + l + ".";
        boolean gemma = c.family() == ModelFamily.GEMMA2;
        int q = c.numHeads() * c.headDim();
        int kv = c.numKvHeads() * c.headDim();
        double[][] h = rmsNorm(x, p + "input_layernorm.weight");
        double[][] qs, ks, vs;
        if (c.family() == ModelFamily.PHI3) {
            double[][] qkv = linear(h, mat(w.get(p + "self_attn.qkv_proj.weight")), null);
            qs = cols(qkv, 0, q);
            ks = cols(qkv, q, q + kv);
            vs = cols(qkv, q + kv, q + 2 * kv);
        } else {
            qs = linear(h, mat(w.get(p + "self_attn.q_proj.weight")), c.attentionBias() ? vec(w.get(p + "self_attn.q_proj.bias")) : null);
            ks = linear(h, mat(w.get(p + "self_attn.k_proj.weight")), c.attentionBias() ? vec(w.get(p + "self_attn.k_proj.bias")) : null);
            vs = linear(h, mat(w.get(p + "self_attn.v_proj.weight")), c.attentionBias() ? vec(w.get(p + "self_attn.v_proj.bias")) : null);
        }
        rope(qs, c.numHeads());
        rope(ks, c.numKvHeads());
        double[][] a = attention(qs, ks, vs, c.layerTypes().get(l) == AttentionKind.SLIDING);
        a = linear(a, mat(w.get(p + "self_attn.o_proj.weight")), c.attentionOutputBias() ? vec(w.get(p + "self_attn.o_proj.bias")) : null);
        if (gemma) {
            a = rmsNorm(a, p + "post_attention_layernorm.weight");
        }
        x = add(x, a);
        h = rmsNorm(x, p + (gemma ? "pre_feedforward_layernorm.weight" : "post_attention_layernorm.weight"));
        double[][] gate, up;
        if (c.family() == ModelFamily.PHI3) {
            double[][] gu = linear(h, mat(w.get(p + "mlp.gate_up_proj.weight")), null);
            gate = cols(gu, 0, c.intermediateSize());
            up = cols(gu, c.intermediateSize(), 2 * c.intermediateSize());
        } else {
            gate = linear(h, mat(w.get(p + "mlp.gate_proj.weight")), c.mlpBias() ? vec(w.get(p + "mlp.gate_proj.bias")) : null);
            up = linear(h, mat(w.get(p + "mlp.up_proj.weight")), c.mlpBias() ? vec(w.get(p + "mlp.up_proj.bias")) : null);
        }
        for (int i = 0; i < gate.length; i++) {
            for (int j = 0; j < gate[i].length; j++) {
                gate[i][j] = act(gate[i][j]) * up[i][j];
            }
        }
        double[][] m = linear(gate, mat(w.get(p + "mlp.down_proj.weight")), c.mlpBias() ? vec(w.get(p + "mlp.down_proj.bias")) : null);
        if (gemma) {
            m = rmsNorm(m, p + "post_feedforward_layernorm.weight");
        }
        return add(x, m);
    }

    /** Rotary embedding in transformers' rotate_half convention: dims i and i + rot/2 form a pair. */
    private void rope(double[][] x, int heads) {
        RopeConfig r = c.rope().orElseThrow();
        int hd = c.headDim();
        int rot = (int) Math.round(hd * r.partialRotaryFactor());
        double[] inv = new double[rot / 2];
        for (int i = 0; i < inv.length; i++) {
            inv[i] = 1.0 / Math.pow(r.theta(), 2.0 * i / rot);
        }
        switch (r.type()) {
            case "default" -> { }
            case "linear" -> {
                for (int i = 0; i < inv.length; i++) {
                    inv[i] /= r.factor();
                }
            }
            case "llama3" -> {
                double lowWavelen = r.originalMaxPositions() / r.lowFreqFactor();
                double highWavelen = r.originalMaxPositions() / r.highFreqFactor();
                for (int i = 0; i < inv.length; i++) {
                    double wavelen = 2 * Math.PI / inv[i];
                    if (wavelen > lowWavelen) {
                        inv[i] /= r.factor();
                    } else if (wavelen >= highWavelen) {
                        double smooth = (r.originalMaxPositions() / wavelen - r.lowFreqFactor()) / (r.highFreqFactor() - r.lowFreqFactor());
                        inv[i] = (1 - smooth) * inv[i] / r.factor() + smooth * inv[i];
                    }
                }
            }
            default -> throw new UnsupportedOperationException("reference rope " + r.type());
        }
        for (int t = 0; t < x.length; t++) {
            for (int h = 0; h < heads; h++) {
                int o = h * hd;
                for (int i = 0; i < rot / 2; i++) {
                    double cos = Math.cos(t * inv[i]);
                    double sin = Math.sin(t * inv[i]);
                    double a = x[t][o + i];
                    double b = x[t][o + i + rot / 2];
                    x[t][o + i] = a * cos - b * sin;
                    x[t][o + i + rot / 2] = b * cos + a * sin;
                }
            }
        }
    }

    /** Causal (optionally sliding-window) attention with GQA and Gemma's score soft-cap. */
    private double[][] attention(double[][] q, double[][] k, double[][] v, boolean sliding) {
        int t = q.length;
        int hd = c.headDim();
        int group = c.numHeads() / c.numKvHeads();
        double[][] out = new double[t][c.numHeads() * hd];
        for (int h = 0; h < c.numHeads(); h++) {
            int kh = h / group;
            for (int i = 0; i < t; i++) {
                double[] s = new double[t];
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < t; j++) {
                    boolean visible = j <= i && (!sliding || j > i - c.slidingWindow().getAsInt());
                    if (!visible) {
                        s[j] = Double.NEGATIVE_INFINITY;
                        continue;
                    }
                    double dot = 0;
                    for (int e = 0; e < hd; e++) {
                        dot += q[i][h * hd + e] * k[j][kh * hd + e];
                    }
                    dot *= c.attentionScale();
                    if (c.attnLogitSoftcap().isPresent()) {
                        double cap = c.attnLogitSoftcap().getAsDouble();
                        dot = cap * Math.tanh(dot / cap);
                    }
                    s[j] = dot;
                    max = Math.max(max, dot);
                }
                double z = 0;
                for (int j = 0; j < t; j++) {
                    s[j] = Math.exp(s[j] - max);
                    z += s[j];
                }
                for (int j = 0; j < t; j++) {
                    double p = s[j] / z;
                    for (int e = 0; e < hd; e++) {
                        out[i][h * hd + e] += p * v[j][kh * hd + e];
                    }
                }
            }
        }
        return out;
    }

    // ---- gpt2 (Conv1D weights are [in, out])

    private double[][] gpt2Block(double[][] x, int l) {
        String p = "transformer.h." + l + ".";
        int d = c.hiddenSize();
        double[][] h = layerNorm(x, p + "ln_1");
        double[][] qkv = linear(h, transpose(mat(w.get(p + "attn.c_attn.weight"))), vec(w.get(p + "attn.c_attn.bias")));
        double[][] a = attention(cols(qkv, 0, d), cols(qkv, d, 2 * d), cols(qkv, 2 * d, 3 * d), false);
        a = linear(a, transpose(mat(w.get(p + "attn.c_proj.weight"))), vec(w.get(p + "attn.c_proj.bias")));
        x = add(x, a);
        h = layerNorm(x, p + "ln_2");
        double[][] m = linear(h, transpose(mat(w.get(p + "mlp.c_fc.weight"))), vec(w.get(p + "mlp.c_fc.bias")));
        for (double[] row : m) {
            for (int j = 0; j < row.length; j++) {
                row[j] = act(row[j]);
            }
        }
        m = linear(m, transpose(mat(w.get(p + "mlp.c_proj.weight"))), vec(w.get(p + "mlp.c_proj.bias")));
        return add(x, m);
    }

    // ---- pieces

    private double act(double x) {
        return switch (c.hiddenActivation()) {
            case "silu" -> x / (1 + Math.exp(-x));
            case "gelu_pytorch_tanh", "gelu_new" -> 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
            default -> throw new UnsupportedOperationException("reference activation " + c.hiddenActivation());
        };
    }

    private double[][] rmsNorm(double[][] x, String weight) {
        double[] g = vec(w.get(weight));
        double[][] out = new double[x.length][];
        for (int i = 0; i < x.length; i++) {
            double ss = 0;
            for (double v : x[i]) {
                ss += v * v;
            }
            double inv = 1 / Math.sqrt(ss / x[i].length + c.normEps());
            out[i] = new double[x[i].length];
            for (int j = 0; j < x[i].length; j++) {
                out[i][j] = x[i][j] * inv * (c.normWeightOffset() + g[j]);
            }
        }
        return out;
    }

    private double[][] layerNorm(double[][] x, String prefix) {
        double[] g = vec(w.get(prefix + ".weight"));
        double[] b = vec(w.get(prefix + ".bias"));
        double[][] out = new double[x.length][];
        for (int i = 0; i < x.length; i++) {
            double mean = 0;
            for (double v : x[i]) {
                mean += v;
            }
            mean /= x[i].length;
            double var = 0;
            for (double v : x[i]) {
                var += (v - mean) * (v - mean);
            }
            var /= x[i].length;
            double inv = 1 / Math.sqrt(var + c.normEps());
            out[i] = new double[x[i].length];
            for (int j = 0; j < x[i].length; j++) {
                out[i][j] = (x[i][j] - mean) * inv * g[j] + b[j];
            }
        }
        return out;
    }

    static void softcap(double[][] z, double cap) {
        for (double[] row : z) {
            for (int j = 0; j < row.length; j++) {
                row[j] = cap * Math.tanh(row[j] / cap);
            }
        }
    }

    /** x [T×in] · W^T with W [out×in] (nn.Linear), plus bias. */
    static double[][] linear(double[][] x, double[][] weight, double[] bias) {
        double[][] out = new double[x.length][weight.length];
        for (int i = 0; i < x.length; i++) {
            for (int o = 0; o < weight.length; o++) {
                double s = bias == null ? 0 : bias[o];
                for (int e = 0; e < x[i].length; e++) {
                    s += x[i][e] * weight[o][e];
                }
                out[i][o] = s;
            }
        }
        return out;
    }

    static double[][] add(double[][] a, double[][] b) {
        double[][] out = new double[a.length][];
        for (int i = 0; i < a.length; i++) {
            out[i] = new double[a[i].length];
            for (int j = 0; j < a[i].length; j++) {
                out[i][j] = a[i][j] + b[i][j];
            }
        }
        return out;
    }

    static double[][] cols(double[][] x, int from, int to) {
        double[][] out = new double[x.length][];
        for (int i = 0; i < x.length; i++) {
            out[i] = java.util.Arrays.copyOfRange(x[i], from, to);
        }
        return out;
    }

    static double[][] transpose(double[][] m) {
        double[][] out = new double[m[0].length][m.length];
        for (int i = 0; i < m.length; i++) {
            for (int j = 0; j < m[0].length; j++) {
                out[j][i] = m[i][j];
            }
        }
        return out;
    }

    static double[][] copy(double[][] x) {
        double[][] out = new double[x.length][];
        for (int i = 0; i < x.length; i++) {
            out[i] = x[i].clone();
        }
        return out;
    }

    static double[] vec(Tensor t) {
        float[] f = t.toFloatArray();
        double[] out = new double[f.length];
        for (int i = 0; i < f.length; i++) {
            out[i] = f[i];
        }
        return out;
    }

    static double[][] mat(Tensor t) {
        int rows = (int) t.dim(0);
        int colsN = (int) t.dim(1);
        float[] f = t.toFloatArray();
        double[][] out = new double[rows][colsN];
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < colsN; j++) {
                out[i][j] = f[i * colsN + j];
            }
        }
        return out;
    }
}
