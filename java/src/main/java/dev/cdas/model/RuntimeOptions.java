package dev.cdas.model;

import dev.cdas.DType;
import dev.cdas.Device;
import dev.cdas.InvalidArgumentException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;

/**
 * Where and how a {@link Model} runs. {@code dtype} null: the checkpoint's own (fp32 for types the
 * runtime does not compute in), except on a CPU where libtorch has no vector kernels for its matrix
 * products (F16 without AVX512-FP16, BF16 without AVX-512), which computes in fp32
 * ({@link Model#computeDtype}). {@code threads} 0 leaves libtorch's (process-wide) setting alone.
 *
 * <p>Layer split (docs/scale-out.md): with two or more {@code split} devices the model's blocks run
 * in contiguous ranges over them in list order (as even as possible), the embedding on the first,
 * the final norm and LM head on the last; {@code device} and {@code deviceIndex} are then the
 * first entry's. {@code autoSplit}: every visible CUDA device, ranges balanced by free memory; on a
 * machine without one, no split (the CPU).
 *
 * @param dtype       the compute type, or null for the checkpoint's own
 * @param device      CPU or CUDA; null means CPU
 * @param deviceIndex the CUDA device ordinal; 0 on CPU
 * @param threads     libtorch's intra-op threads, 0 to leave them alone
 * @param split       the devices of a layer split, empty for none (never one entry)
 * @param autoSplit   split over the CUDA devices by free memory ({@code split} then empty)
 */
public record RuntimeOptions(DType dtype, Device device, int deviceIndex, int threads, List<SplitDevice> split,
                             boolean autoSplit) {
    /**
     * Checks the options.
     *
     * @throws InvalidArgumentException when the device index is negative, not 0 on CPU, the thread
     *         count is outside 0..{@link dev.cdas.Args#maxThreads()}, a split device is listed twice
     *         or a split has one entry, or {@code autoSplit} comes with a list
     */
    public RuntimeOptions {
        if (device == null) {
            device = Device.CPU;
        }
        if (deviceIndex < 0 || (device == Device.CPU && deviceIndex != 0)) {
            throw new InvalidArgumentException("deviceIndex must be 0 on CPU and >= 0 on CUDA, got " + deviceIndex);
        }
        dev.cdas.Args.threads("threads", threads);
        split = split == null ? List.of() : List.copyOf(split);
        if (split.size() == 1) {
            throw new InvalidArgumentException("a layer split needs two or more devices, got " + split.getFirst()
                    + " alone (use it as the device)");
        }
        if (new HashSet<>(split).size() != split.size()) {
            throw new InvalidArgumentException("a layer split lists a device twice: " + splitName(split));
        }
        if (autoSplit && !split.isEmpty()) {
            throw new InvalidArgumentException("autoSplit chooses the devices itself; give no split list with it");
        }
    }

    /**
     * Options on one device, no split.
     *
     * @param dtype       the compute type, or null for the checkpoint's own
     * @param device      CPU or CUDA; null means CPU
     * @param deviceIndex the CUDA device ordinal; 0 on CPU
     * @param threads     libtorch's intra-op threads, 0 to leave them alone
     * @throws InvalidArgumentException as the canonical constructor
     */
    public RuntimeOptions(DType dtype, Device device, int deviceIndex, int threads) {
        this(dtype, device, deviceIndex, threads, List.of(), false);
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
        return new RuntimeOptions(dtype, device, deviceIndex, threads, split, autoSplit);
    }

    /**
     * "cpu", "cuda" or "cuda:N", without a split.
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
        return new RuntimeOptions(dtype, device, deviceIndex, threads, split, autoSplit);
    }

    /**
     * A layer split: "auto" (every CUDA device, balanced by free memory; no split without one) or a
     * comma-separated list of devices ({@link SplitDevice#parse}), e.g. "cuda:0,cuda:1" or
     * "cpu:0,cpu:1"; one entry is the same as {@link #withDevice}. Replaces the device.
     *
     * @param spec the devices
     * @return new options
     * @throws InvalidArgumentException when an entry is not a device or one is listed twice
     */
    public RuntimeOptions withDevices(String spec) {
        String s = spec == null ? "" : spec.trim();
        if (s.equalsIgnoreCase("auto")) {
            return new RuntimeOptions(dtype, Device.CPU, 0, threads, List.of(), true);
        }
        List<SplitDevice> list = new ArrayList<>();
        for (String part : s.split(",", -1)) {
            list.add(SplitDevice.parse(part));
        }
        SplitDevice first = list.getFirst();
        if (list.size() == 1) {
            return new RuntimeOptions(dtype, first.device(), first.device() == Device.CPU ? 0 : first.index(), threads);
        }
        return new RuntimeOptions(dtype, first.device(), first.device() == Device.CPU ? 0 : first.index(), threads, list,
                false);
    }

    /**
     * The split's devices joined as the CLI writes them.
     *
     * @param devices the devices
     * @return e.g. "cuda:0,cuda:1"
     */
    static String splitName(List<SplitDevice> devices) {
        return String.join(",", devices.stream().map(SplitDevice::toString).toList());
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
