package dev.cdas.fanout;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cdas.InvalidArgumentException;

/**
 * One concept's line of {@code manifest.jsonl}. Paths are relative to the output folder. For a
 * failed concept the file fields, the loss and the factors are null and {@code error} says why.
 *
 * @param lossCurve  the loss CSV (null for diffmean, which has none)
 * @param finalLoss  the loss of the last step (null for diffmean)
 * @param seconds    wall time of the concept, training and factors (in this run: after the checkpoint when resumed)
 * @param shard      {@code i/n} of the process that wrote it (for the record; the result does not depend on it)
 * @param resumedFromStep the step of the checkpoint an interrupted run left, which this one continued from;
 *                   null when trained from the start (then absent from the JSON)
 */
public record ManifestEntry(String concept, long conceptId, String status, String file, String lossCurve,
        Double finalLoss, double[] factorPositive, double[] factorNegative, int pairs, long steps, double seconds,
        String shard, String error, Long resumedFromStep) {

    public static final String OK = "ok";
    public static final String FAILED = "failed";

    public boolean ok() {
        return OK.equals(status);
    }

    public static ManifestEntry failed(Concept c, double seconds, String shard, String error) {
        return new ManifestEntry(c.name(), c.id(), FAILED, null, null, null, null, null, c.pairs().size(), 0, seconds, shard, error,
                null);
    }

    public ObjectNode toJson() {
        JsonNodeFactory f = JsonNodeFactory.instance;
        ObjectNode o = f.objectNode();
        o.put("concept", concept);
        o.put("concept_id", conceptId);
        o.put("status", status);
        o.put("file", file);
        o.put("loss_curve", lossCurve);
        if (finalLoss == null) {
            o.putNull("final_loss");
        } else {
            o.put("final_loss", finalLoss);
        }
        if (factorPositive == null) {
            o.putNull("factors");
        } else {
            ObjectNode factors = o.putObject("factors");
            ArrayNode pos = factors.putArray("positive");
            for (double v : factorPositive) {
                pos.add(v);
            }
            ArrayNode neg = factors.putArray("negative");
            for (double v : factorNegative) {
                neg.add(v);
            }
        }
        o.put("pairs", pairs);
        o.put("steps", steps);
        o.put("seconds", Math.round(seconds * 1000) / 1000.0);
        o.put("shard", shard);
        o.put("error", error);
        if (resumedFromStep != null) {
            o.put("resumed_from_step", resumedFromStep);
        }
        return o;
    }

    /** Reads a line written by {@link #toJson}; {@code where} names it in errors ("DIR/manifest.jsonl line 3"). */
    public static ManifestEntry fromJson(JsonNode o, String where) {
        if (!o.isObject()) {
            throw new InvalidArgumentException(where + ": not a JSON object");
        }
        String status = text(o, "status", where, false);
        if (!OK.equals(status) && !FAILED.equals(status)) {
            throw new InvalidArgumentException(where + ": status must be \"ok\" or \"failed\", got \"" + status + "\"");
        }
        JsonNode id = o.get("concept_id");
        if (id == null || !id.canConvertToLong() || !id.isIntegralNumber()) {
            throw new InvalidArgumentException(where + ": concept_id must be an integer");
        }
        boolean ok = OK.equals(status);
        double[] pos = null;
        double[] neg = null;
        JsonNode factors = o.get("factors");
        if (factors != null && !factors.isNull()) {
            pos = numbers(factors.get("positive"), where, "factors.positive");
            neg = numbers(factors.get("negative"), where, "factors.negative");
        } else if (ok) {
            throw new InvalidArgumentException(where + ": an ok entry needs factors");
        }
        JsonNode loss = o.get("final_loss");
        return new ManifestEntry(text(o, "concept", where, false), id.asLong(), status, text(o, "file", where, !ok),
                text(o, "loss_curve", where, true), loss == null || loss.isNull() ? null : loss.asDouble(), pos, neg,
                o.path("pairs").asInt(), o.path("steps").asLong(), o.path("seconds").asDouble(), text(o, "shard", where, true),
                text(o, "error", where, true), o.hasNonNull("resumed_from_step") ? o.get("resumed_from_step").asLong() : null);
    }

    private static String text(JsonNode o, String field, String where, boolean nullable) {
        JsonNode v = o.get(field);
        if (v == null || v.isNull()) {
            if (nullable) {
                return null;
            }
            throw new InvalidArgumentException(where + ": field \"" + field + "\" is missing");
        }
        if (!v.isTextual()) {
            throw new InvalidArgumentException(where + ": field \"" + field + "\" must be a string");
        }
        return v.asText();
    }

    private static double[] numbers(JsonNode a, String where, String field) {
        if (a == null || !a.isArray()) {
            throw new InvalidArgumentException(where + ": " + field + " must be an array of numbers");
        }
        double[] out = new double[a.size()];
        for (int i = 0; i < out.length; i++) {
            if (!a.get(i).isNumber()) {
                throw new InvalidArgumentException(where + ": " + field + " must be an array of numbers");
            }
            out[i] = a.get(i).asDouble();
        }
        return out;
    }
}
