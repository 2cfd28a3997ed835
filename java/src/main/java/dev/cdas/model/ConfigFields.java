package dev.cdas.model;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Path;
import java.util.OptionalDouble;
import java.util.OptionalInt;

/** Typed access to one JSON object of config.json, with errors that name the file and field path. */
final class ConfigFields {
    private final Path file;
    private final JsonNode node;
    private final String prefix;

    ConfigFields(Path file, JsonNode node, String prefix) {
        this.file = file;
        this.node = node;
        this.prefix = prefix;
    }

    Path file() {
        return file;
    }

    String path(String key) {
        return prefix.isEmpty() ? key : prefix + "." + key;
    }

    /** The value, or null when absent or JSON null. */
    JsonNode get(String key) {
        JsonNode v = node.get(key);
        return v == null || v.isNull() ? null : v;
    }

    /** The key is present with an explicit JSON null. */
    boolean rawIsNull(String key) {
        JsonNode v = node.get(key);
        return v != null && v.isNull();
    }

    boolean has(String key) {
        return get(key) != null;
    }

    /** The first of several alternative names that is present, or null. */
    String firstPresent(String... keys) {
        for (String k : keys) {
            if (has(k)) {
                return k;
            }
        }
        return null;
    }

    ConfigFields object(String key) throws ConfigException {
        JsonNode v = get(key);
        if (v == null) {
            return null;
        }
        if (!v.isObject()) {
            throw new ConfigException(file, path(key), "must be an object, got " + v.getNodeType().toString().toLowerCase());
        }
        return new ConfigFields(file, v, path(key));
    }

    int requiredInt(String key) throws ConfigException {
        if (!has(key)) {
            throw new ConfigException(file, path(key), "required field is missing");
        }
        return intValue(key);
    }

    /** Required positive int, under the first of several names (e.g. hidden_size / n_embd). */
    int requiredPositive(String... keys) throws ConfigException {
        String k = firstPresent(keys);
        if (k == null) {
            throw new ConfigException(file, path(keys[0]), "required field is missing"
                    + (keys.length > 1 ? " (also looked for " + String.join(", ", java.util.Arrays.copyOfRange(keys, 1, keys.length)) + ")" : ""));
        }
        return positive(k, intValue(k));
    }

    int optPositive(String key, int dflt) throws ConfigException {
        return has(key) ? positive(key, intValue(key)) : dflt;
    }

    int positive(String key, int v) throws ConfigException {
        if (v <= 0) {
            throw new ConfigException(file, path(key), "must be positive, got " + v);
        }
        return v;
    }

    OptionalInt optInt(String key) throws ConfigException {
        return has(key) ? OptionalInt.of(intValue(key)) : OptionalInt.empty();
    }

    private int intValue(String key) throws ConfigException {
        JsonNode v = get(key);
        if (!v.isIntegralNumber() || !v.canConvertToInt()) {
            if (v.isNumber() && v.asDouble() == Math.rint(v.asDouble()) && Math.abs(v.asDouble()) < Integer.MAX_VALUE) {
                return (int) v.asDouble(); // 4096.0 written by some tools
            }
            throw new ConfigException(file, path(key), "must be an integer, got " + v);
        }
        return v.intValue();
    }

    double optDouble(String key, double dflt) throws ConfigException {
        OptionalDouble v = optDouble(key);
        return v.isPresent() ? v.getAsDouble() : dflt;
    }

    OptionalDouble optDouble(String key) throws ConfigException {
        JsonNode v = get(key);
        if (v == null) {
            return OptionalDouble.empty();
        }
        if (!v.isNumber()) {
            throw new ConfigException(file, path(key), "must be a number, got " + v);
        }
        if (!Double.isFinite(v.doubleValue())) {
            throw new ConfigException(file, path(key), "must be a finite number, got " + v.asText());
        }
        return OptionalDouble.of(v.doubleValue());
    }

    double requiredDouble(String key) throws ConfigException {
        OptionalDouble v = optDouble(key);
        if (v.isEmpty()) {
            throw new ConfigException(file, path(key), "required field is missing");
        }
        return v.getAsDouble();
    }

    boolean optBool(String key, boolean dflt) throws ConfigException {
        JsonNode v = get(key);
        if (v == null) {
            return dflt;
        }
        if (!v.isBoolean()) {
            throw new ConfigException(file, path(key), "must be true or false, got " + v);
        }
        return v.booleanValue();
    }

    String optString(String key, String dflt) throws ConfigException {
        JsonNode v = get(key);
        if (v == null) {
            return dflt;
        }
        if (!v.isTextual()) {
            throw new ConfigException(file, path(key), "must be a string, got " + v);
        }
        return v.textValue();
    }

    double[] optDoubleArray(String key) throws ConfigException {
        JsonNode v = get(key);
        if (v == null) {
            return null;
        }
        if (!v.isArray()) {
            throw new ConfigException(file, path(key), "must be an array of numbers");
        }
        double[] out = new double[v.size()];
        for (int i = 0; i < out.length; i++) {
            if (!v.get(i).isNumber()) {
                throw new ConfigException(file, path(key) + "[" + i + "]", "must be a number, got " + v.get(i));
            }
            out[i] = v.get(i).doubleValue();
            if (!Double.isFinite(out[i])) {
                throw new ConfigException(file, path(key) + "[" + i + "]", "must be a finite number, got " + v.get(i).asText());
            }
        }
        return out;
    }
}
