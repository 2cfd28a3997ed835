package dev.cdas.fanout;

import dev.cdas.InvalidArgumentException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * Which concepts of a file to train: {@code all}, a comma-separated list of concept ids, or
 * {@code @FILE}, a file of concept ids (separated by commas, spaces or line breaks; {@code #}
 * starts a comment that runs to the end of its line).
 */
public final class ConceptSelection {
    private final Set<Long> ids; // null: all
    private final String source;

    private ConceptSelection(Set<Long> ids, String source) {
        this.ids = ids;
        this.source = source;
    }

    public static ConceptSelection all() {
        return new ConceptSelection(null, "all");
    }

    /** Parses {@code all}, {@code ID,ID,...} or {@code @FILE} (read now). */
    public static ConceptSelection parse(String text) throws IOException {
        String t = text.strip();
        if (t.equals("all")) {
            return all();
        }
        if (t.startsWith("@")) {
            Path file = Path.of(t.substring(1));
            if (!Files.exists(file)) {
                throw new NoSuchFileException(file.toString(), null, "no such concept list");
            }
            dev.cdas.io.InputFiles.requireRegularFile(file);
            StringBuilder body = new StringBuilder();
            for (String line : Files.readAllLines(file)) {
                int hash = line.indexOf('#');
                body.append(hash >= 0 ? line.substring(0, hash) : line).append('\n');
            }
            return new ConceptSelection(ids(body.toString(), file.toString()), file.toString());
        }
        return new ConceptSelection(ids(t, null), t);
    }

    private static Set<Long> ids(String text, String file) {
        Set<Long> ids = new LinkedHashSet<>();
        for (String token : text.split("[,\\s]+")) {
            if (token.isEmpty()) {
                continue;
            }
            try {
                ids.add(Long.parseLong(token));
            } catch (NumberFormatException e) {
                throw new InvalidArgumentException((file != null ? file + ": " : "") + "\"" + token
                        + "\" is not a concept id (an integer; or use all)");
            }
        }
        if (ids.isEmpty()) {
            throw new InvalidArgumentException((file != null ? file + " lists" : "the concept selection lists") + " no concept ids");
        }
        return ids;
    }

    /** True for {@code all}. */
    public boolean isAll() {
        return ids == null;
    }

    /**
     * The selected concepts of {@code available} (the concepts of {@code data}), by ascending id.
     * An id the file does not have is an error that names it and the file.
     */
    public List<Concept> select(List<Concept> available, Path data) {
        if (ids == null) {
            return List.copyOf(available);
        }
        Map<Long, Concept> byId = new TreeMap<>();
        available.forEach(c -> byId.put(c.id(), c));
        List<Long> unknown = ids.stream().filter(id -> !byId.containsKey(id)).toList();
        if (!unknown.isEmpty()) {
            throw new InvalidArgumentException("concept id" + (unknown.size() == 1 ? " " : "s ") + join(unknown)
                    + (unknown.size() == 1 ? " is" : " are") + " not in " + data + " (it has " + available.size() + " concept"
                    + (available.size() == 1 ? "" : "s") + ", ids " + join(byId.keySet().stream().limit(20).toList())
                    + (byId.size() > 20 ? ", ..." : "") + ")");
        }
        List<Concept> out = new ArrayList<>();
        byId.forEach((id, c) -> {
            if (ids.contains(id)) {
                out.add(c);
            }
        });
        return out;
    }

    private static String join(List<Long> ids) {
        return String.join(", ", ids.stream().map(String::valueOf).toList());
    }

    @Override
    public String toString() {
        return source;
    }
}
