package dev.cdas.model;

import dev.cdas.DType;
import dev.cdas.Device;
import dev.cdas.InvalidArgumentException;

/**
 * Where and how a {@link Model} runs. {@code dtype} null: the checkpoint's own (fp32 for types the
 * runtime does not compute in). {@code threads} 0 leaves libtorch's (process-wide) setting alone.
 *
 * @param dtype       the compute type, or null for the checkpoint's own
 * @param device      CPU or CUDA; null means CPU
 * @param deviceIndex the CUDA device ordinal; 0 on CPU
 * @param threads     libtorch's intra-op threads, 0 to leave them alone
 */
public record RuntimeOptions(DType dtype, Device device, int deviceIndex, int threads) {
    /**
     * Checks the options.
     *
     * @throws InvalidArgumentException when the device index is negative, not 0 on CPU, or the thread
     *         count is outside 0..{@link dev.cdas.Args#maxThreads()}
     */
    public RuntimeOptions {
        if (device == null) {
            device = Device.CPU;
        }
        if (deviceIndex < 0 || (device == Device.CPU && deviceIndex != 0)) {
            throw new InvalidArgumentException("deviceIndex must be 0 on CPU and >= 0 on CUDA, got " + deviceIndex);
        }
        dev.cdas.Args.threads("threads", threads);
    }

    /**
     * The checkpoint's dtype, on the CPU, with libtorch's threads left alone.
     *
     * @return the default options
     */
    public static RuntimeOptions defaults() {
        return new RuntimeOptions(null, Device.CPU, 0, 0);
    }

    /**
     * The same options with another compute type.
     *
     * @param dtype the compute type, or null for the checkpoint's own
     * @return new options
     */
    public RuntimeOptions withDtype(DType dtype) {
        return new RuntimeOptions(dtype, device, deviceIndex, threads);
    }

    /**
     * "cpu", "cuda" or "cuda:N".
     *
     * @param spec the device, case-insensitive
     * @return new options on that device
     * @throws InvalidArgumentException when {@code spec} is none of those forms
     */
    public RuntimeOptions withDevice(String spec) {
        String s = spec == null ? "" : spec.trim().toLowerCase(java.util.Locale.ROOT);
        if (s.equals("cpu")) {
            return new RuntimeOptions(dtype, Device.CPU, 0, threads);
        }
        if (s.equals("cuda")) {
            return new RuntimeOptions(dtype, Device.CUDA, 0, threads);
        }
        if (s.startsWith("cuda:")) {
            try {
                return new RuntimeOptions(dtype, Device.CUDA, Integer.parseInt(s.substring(5)), threads);
            } catch (NumberFormatException e) {
                // reported below
            }
        }
        throw new InvalidArgumentException("device must be cpu, cuda or cuda:N, got \"" + spec + "\"");
    }

    /**
     * The same options with another thread count.
     *
     * @param threads libtorch's intra-op threads, 0 to leave them alone
     * @return new options
     * @throws InvalidArgumentException when the count is outside 0..{@link dev.cdas.Args#maxThreads()}
     */
    public RuntimeOptions withThreads(int threads) {
        return new RuntimeOptions(dtype, device, deviceIndex, threads);
    }

    /**
     * "f32", "bf16" or "f16" (also float32, bfloat16, float16).
     *
     * @param name the type's name, case-insensitive
     * @return the type
     * @throws InvalidArgumentException when the name is none of those
     */
    public static DType parseDtype(String name) {
        return switch (name == null ? "" : name.trim().toLowerCase(java.util.Locale.ROOT)) {
            case "f32", "fp32", "float32" -> DType.F32;
            case "bf16", "bfloat16" -> DType.BF16;
            case "f16", "fp16", "float16", "half" -> DType.F16;
            default -> throw new InvalidArgumentException("dtype must be f32, bf16 or f16, got \"" + name + "\"");
        };
    }
}
