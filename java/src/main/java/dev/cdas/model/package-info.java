/**
 * What the runtime needs to know about a Hugging Face model folder before any compute:
 * {@link dev.cdas.model.ModelConfig} (config.json, normalised across llama, gemma2, qwen2, phi3 and
 * gpt2, with the expected weight names and shapes), {@link dev.cdas.model.CheckpointValidator}
 * (the weights against the config), {@link dev.cdas.model.Tokenizer} (tokenizer.json through DJL's
 * Hugging Face tokenizers, offline), {@link dev.cdas.model.ChatTemplate} (Jinja chat templates on
 * Jinjava) and {@link dev.cdas.model.PromptEncoder} (prompt ids, prefix_len and the source position
 * of docs/method.md section 1).
 *
 * <p>A model folder is what transformers' {@code save_pretrained} writes: config.json,
 * model.safetensors or model-*.safetensors + model.safetensors.index.json, tokenizer.json,
 * tokenizer_config.json (and optionally chat_template.jinja).
 */
package dev.cdas.model;
