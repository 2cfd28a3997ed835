package dev.cdas.fanout;

import dev.cdas.data.ConceptPair;
import dev.cdas.data.DataFormatException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/** One concept of a multi-concept data file: its id, its name and its pairs in file order. */
public record Concept(long id, String name, List<ConceptPair> pairs) {

    public Concept {
        pairs = List.copyOf(pairs);
    }

    /**
     * The concepts of {@code pairs} (read from {@code file}) by ascending id. An id that names two
     * different concepts is an error naming both rows.
     */
    public static List<Concept> group(List<ConceptPair> pairs, Path file) throws DataFormatException {
        TreeMap<Long, List<ConceptPair>> byId = new TreeMap<>();
        Map<Long, ConceptPair> first = new HashMap<>();
        for (ConceptPair p : pairs) {
            ConceptPair f = first.putIfAbsent(p.conceptId(), p);
            if (f != null && !f.concept().equals(p.concept())) {
                throw new DataFormatException(file, null, ConceptPair.CONCEPT_ID, "concept_id " + p.conceptId()
                        + " names two concepts: \"" + f.concept() + "\" (" + f.origin() + ") and \"" + p.concept() + "\" ("
                        + p.origin() + ")");
            }
            byId.computeIfAbsent(p.conceptId(), k -> new ArrayList<>()).add(p);
        }
        List<Concept> out = new ArrayList<>(byId.size());
        byId.forEach((id, list) -> out.add(new Concept(id, list.getFirst().concept(), list)));
        return out;
    }

    /** The base name of this concept's files: the id, then the name's letters and digits ("7-star-trek"). */
    public String fileStem() {
        StringBuilder sb = new StringBuilder(Long.toString(id));
        boolean dash = true;
        int letters = 0;
        for (int i = 0; i < name.length() && letters < 40; ) {
            int cp = name.codePointAt(i);
            i += Character.charCount(cp);
            if (cp < 128 && Character.isLetterOrDigit(cp)) {
                if (dash) {
                    sb.append('-');
                    dash = false;
                }
                sb.append(Character.toLowerCase((char) cp));
                letters++;
            } else {
                dash = true;
            }
        }
        return sb.toString();
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT, "%d (%s)", id, name);
    }
}
