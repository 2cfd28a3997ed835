package dev.cdas.bench;

/** The benchmark shapes, by name, so JMH parameters and the memory probe agree. */
final class Shapes {
    private Shapes() {
    }

    /** LM head: rows (tokens) T, hidden d, vocabulary V. */
    record Head(long rows, long dim, long vocab) {
    }

    /** DII: rows T, hidden d, rank r, examples B. */
    record Intervention(long rows, long dim, long rank, long examples) {
    }

    static Head head(String name) {
        return switch (name) {
            case "small" -> new Head(64, 128, 4099);
            case "gpt2" -> new Head(512, 768, 50257);
            default -> throw new IllegalArgumentException("unknown LM-head shape '" + name + "' (small, gpt2)");
        };
    }

    static Intervention intervention(String name) {
        return switch (name) {
            case "small" -> new Intervention(257, 128, 1, 4);
            case "gpt2" -> new Intervention(4096, 768, 1, 32);
            case "gemma2b" -> new Intervention(8192, 2304, 1, 64);
            default -> throw new IllegalArgumentException(
                    "unknown intervention shape '" + name + "' (small, gpt2, gemma2b)");
        };
    }
}
