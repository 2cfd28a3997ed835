package dev.cdas.cli;

import static dev.cdas.cli.TrainSteerObjectiveCommandTest.run;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cdas.train.SteeringVectorFile;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * train --columns: the same 12 demo pairs under other key names and without concept fields give
 * bit for bit the vector (diffmean) the original file gives; a bad mapping is a one-line error, exit 2.
 */
class ColumnsOptionTest {
    @TempDir
    Path dir;

    @Test
    void renamedKeysTrainTheSameVector() throws IOException {
        Path root = CliSupport.demoRoot();
        Path model = root.resolve(CliSupport.DEMO_MODEL);
        List<String> lines = Files.readAllLines(root.resolve(CliSupport.DEMO_DATA)).subList(0, 12);
        Path original = dir.resolve("original.jsonl");
        Files.write(original, lines);
        ObjectMapper json = new ObjectMapper();
        List<String> renamed = new ArrayList<>();
        for (String line : lines) {
            ObjectNode in = (ObjectNode) json.readTree(line);
            ObjectNode out = json.createObjectNode();
            out.set("plain_prompt", in.get("negative_input"));
            out.set("plain_reply", in.get("negative_output"));
            out.set("concept_prompt", in.get("positive_input"));
            out.set("concept_reply", in.get("positive_output"));
            renamed.add(json.writeValueAsString(out));
        }
        Path trek = dir.resolve("trek.jsonl");
        Files.write(trek, renamed);

        Path a = dir.resolve("a.safetensors");
        Path b = dir.resolve("b.safetensors");
        var ra = run("train", "--method", "diffmean", "--model", model.toString(), "--data", original.toString(),
                "--layer", "1", "--out", a.toString(), "--max-response-tokens", "8");
        assertEquals(0, ra.exit(), ra.out() + ra.err());
        var rb = run("train", "--method", "diffmean", "--model", model.toString(), "--data", trek.toString(),
                "--layer", "1", "--out", b.toString(), "--max-response-tokens", "8", "--columns",
                "negative_input=plain_prompt,negative_output=plain_reply,positive_input=concept_prompt,positive_output=concept_reply");
        assertEquals(0, rb.exit(), rb.out() + rb.err());
        SteeringVectorFile va = SteeringVectorFile.read(a);
        SteeringVectorFile vb = SteeringVectorFile.read(b);
        assertArrayEquals(va.w(), vb.w());
        assertArrayEquals(va.factorPositive(), vb.factorPositive());
        assertEquals("Star Trek", va.concept());
        assertEquals("trek", vb.concept()); // no concept key: named after the file

        // Without the mapping the renamed file is refused, naming the file, line and key.
        var missing = run("train", "--method", "diffmean", "--model", model.toString(), "--data", trek.toString(),
                "--layer", "1", "--out", dir.resolve("c.safetensors").toString());
        assertEquals(2, missing.exit(), missing.out() + missing.err());
        assertTrue(missing.err().contains(trek + " line 1, field \"negative_input\": missing"), missing.err());
        assertFalse(Files.exists(dir.resolve("c.safetensors")));
    }

    @Test
    void aBadMappingIsAOneLineError() throws IOException {
        Path root = CliSupport.demoRoot();
        var r = run("train", "--model", root.resolve(CliSupport.DEMO_MODEL).toString(), "--data",
                root.resolve(CliSupport.DEMO_DATA).toString(), "--layer", "1", "--out", dir.resolve("v.safetensors").toString(),
                "--columns", "prompt=instruction");
        assertEquals(2, r.exit(), r.out() + r.err());
        assertTrue(r.err().contains("--columns: column mapping: unknown field \"prompt\""), r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
        try (var left = Files.list(dir)) {
            assertEquals(List.of(), left.toList());
        }
    }
}
