/**
 * cdas-native: trains CDAS steering vectors for transformer language models and applies them,
 * with the hot path in native kernels reached through the Foreign Function and Memory API.
 *
 * <p>The exported packages are the library's API: {@link dev.cdas.api} (a few lines from a model
 * folder and pairs to a trained vector and steered generations), {@link dev.cdas.model} (loading a
 * Hugging Face model folder, generating with and without steering), {@link dev.cdas.train} (the
 * objectives, the trainer, the vector files), {@link dev.cdas.data} (pairs files), {@link dev.cdas.eval}
 * (multiple-choice and steering evaluations), {@link dev.cdas.io}
 * (safetensors and checkpoints) and {@link dev.cdas} (the native context, its kernels and the
 * library's exceptions). The concept fan-out behind {@code train --concepts}
 * ({@code dev.cdas.fanout}), the double-precision reference implementations
 * ({@code dev.cdas.reference}) and the generated bindings (module {@code dev.cdas.bindings}) are
 * not part of it. The command line ({@code dev.cdas.cli}) is not in this module at all: it is the
 * separate artifact {@code dev.cdas:cdas-native-cli}, which runs from the class path.
 *
 * <p>Parquet and Hadoop's jars split packages among themselves, so they cannot be modules: the
 * library reads them from the class path (it adds the read edge to the unnamed module itself).
 * On the module path, run with {@code --enable-native-access=dev.cdas}.
 */
module dev.cdas {
    requires dev.cdas.bindings;
    requires com.fasterxml.jackson.databind;
    requires ai.djl.tokenizers;
    requires jinjava;
    requires me.tongfei.progressbar;
    requires org.knowm.xchart;
    requires java.desktop;
    requires java.net.http;

    exports dev.cdas;
    exports dev.cdas.api;
    exports dev.cdas.data;
    exports dev.cdas.eval;
    exports dev.cdas.io;
    exports dev.cdas.model;
    exports dev.cdas.train;
}
