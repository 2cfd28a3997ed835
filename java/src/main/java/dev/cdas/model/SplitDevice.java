package dev.cdas.model;

import dev.cdas.Device;
import dev.cdas.InvalidArgumentException;
import java.util.Locale;

/**
 * One device of a layer split ({@link RuntimeOptions#split()}): a CUDA device, or a CPU placement
 * stage ({@code cpu:0}, {@code cpu:1}, ...: stages on the one CPU, each with its own weights and
 * activations, every boundary crossed by the same copy as between GPUs; for testing the split
 * without GPUs).
 *
 * @param device CPU or CUDA
 * @param index  the CUDA ordinal, or the CPU stage's number; &gt;= 0
 */
public record SplitDevice(Device device, int index) {
    /**
     * Checks the fields.
     *
     * @throws InvalidArgumentException when the device is null or the index negative
     */
    public SplitDevice {
        if (device == null) {
            throw new InvalidArgumentException("a split device needs a device type");
        }
        if (index < 0) {
            throw new InvalidArgumentException("a split device's index must be >= 0, got " + index);
        }
    }

    /**
     * "cpu", "cpu:N", "cuda" or "cuda:N" (no index: 0).
     *
     * @param spec the device, case-insensitive
     * @return the device
     * @throws InvalidArgumentException when {@code spec} is none of those forms
     */
    public static SplitDevice parse(String spec) {
        String s = spec == null ? "" : spec.trim().toLowerCase(Locale.ROOT);
        int colon = s.indexOf(':');
        String kind = colon < 0 ? s : s.substring(0, colon);
        Device device = switch (kind) {
            case "cpu" -> Device.CPU;
            case "cuda" -> Device.CUDA;
            default -> null;
        };
        if (device != null) {
            if (colon < 0) {
                return new SplitDevice(device, 0);
            }
            String digits = s.substring(colon + 1);
            if (!digits.isEmpty() && digits.chars().allMatch(c -> c >= '0' && c <= '9') && digits.length() <= 4) {
                return new SplitDevice(device, Integer.parseInt(digits));
            }
        }
        throw new InvalidArgumentException("a device must be cpu, cpu:N, cuda or cuda:N, got \"" + spec + "\"");
    }

    /**
     * The device as the CLI writes it.
     *
     * @return "cpu:N" or "cuda:N"
     */
    @Override
    public String toString() {
        return device.name().toLowerCase(Locale.ROOT) + ":" + index;
    }
}
