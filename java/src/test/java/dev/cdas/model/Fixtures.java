package dev.cdas.model;

import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Path;
import java.util.List;

/** The fixture folders written by tools/make_fixtures.py (see tools/README.md). */
public final class Fixtures {
    public static final List<String> FAMILIES = List.of("llama", "gemma2", "qwen2", "phi3", "gpt2");
    /** Families whose fixture has a tokenizer and chat template. */
    public static final List<String> CHAT_FAMILIES = List.of("llama", "gemma2", "qwen2", "phi3");

    private Fixtures() {}

    public static Path dir(String name) {
        URL url = Fixtures.class.getResource("/fixtures/" + name);
        if (url == null) {
            throw new IllegalStateException("fixture folder fixtures/" + name + " is not on the test class path; "
                    + "regenerate with tools/make_fixtures.py");
        }
        try {
            return Path.of(url.toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }
}
