package dev.cdas.data;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.apache.parquet.column.page.PageReadStore;
import org.apache.parquet.example.data.Group;
import org.apache.parquet.example.data.simple.convert.GroupRecordConverter;
import org.apache.parquet.hadoop.ParquetFileReader;
import org.apache.parquet.io.ColumnIOFactory;
import org.apache.parquet.io.RecordReader;
import org.apache.parquet.schema.GroupType;
import org.apache.parquet.schema.LogicalTypeAnnotation;
import org.apache.parquet.schema.MessageType;
import org.apache.parquet.schema.PrimitiveType;
import org.apache.parquet.schema.Type;
import org.apache.parquet.schema.Types;

/**
 * Rows of a JSONL or Parquet file as JSON objects, for readers of evaluation data whose columns
 * nest (lists of strings, structs of lists: MMLU's {@code choices}, TruthfulQA's
 * {@code mc1_targets}). A Parquet row becomes the object pandas would print: strings, numbers and
 * booleans as such, LIST columns (three-level or legacy two-level) as arrays, structs as objects,
 * nulls as JSON null. Only the named top-level columns are read from Parquet; JSONL lines are kept
 * whole. Each row carries where it came from ("line 7", 1-based; "row 6", 0-based like pandas).
 */
public final class TableRows {
    private static final ObjectMapper JSON = JsonMapper.builder().build();
    private static final JsonNodeFactory NODES = JsonNodeFactory.instance;

    /**
     * One row and where it is in its file.
     *
     * @param values the row's columns as a JSON object
     * @param location where the row is: "line 7" (JSONL, from 1) or "row 6" (Parquet, from 0)
     */
    public record Row(ObjectNode values, String location) {}

    private TableRows() {}

    /**
     * The rows of {@code file} ({@code .jsonl}/{@code .ndjson}/{@code .json} or {@code .parquet});
     * from Parquet the {@code required} columns (one missing is an error that lists the file's
     * columns) and those of {@code optional} that the file has. A JSONL row's fields are the
     * caller's to check. An empty file is an error.
     *
     * @param file the data file
     * @param required the Parquet columns that must be there
     * @param optional the Parquet columns read when there
     * @return the rows in file order
     * @throws IOException when the file cannot be read or is malformed ({@link DataFormatException})
     */
    public static List<Row> read(Path file, Set<String> required, Set<String> optional) throws IOException {
        PairReader.Format format = PairReader.formatOf(file);
        if (!Files.exists(file)) {
            throw new NoSuchFileException(file.toString(), null, "no such data file");
        }
        dev.cdas.io.InputFiles.requireRegularFile(file);
        List<Row> rows = format == PairReader.Format.JSONL ? readJsonl(file) : readParquet(file, required, optional);
        if (rows.isEmpty()) {
            throw new DataFormatException(file, null, null, "holds no rows");
        }
        return rows;
    }

    /** The non-blank lines of a JSONL file as JSON objects (strict UTF-8; each line must be an object). */
    static List<Row> readJsonl(Path file) throws IOException {
        List<Row> rows = new ArrayList<>();
        var decoder = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        try (BufferedReader in = new BufferedReader(new InputStreamReader(Files.newInputStream(file), decoder))) {
            int lineNo = 0;
            while (true) {
                String line;
                try {
                    line = in.readLine();
                } catch (CharacterCodingException e) {
                    throw new DataFormatException(file, "line " + (lineNo + 1), null, "not valid UTF-8", e);
                }
                if (line == null) {
                    return rows;
                }
                lineNo++;
                if (line.isBlank()) {
                    continue;
                }
                String where = "line " + lineNo;
                JsonNode node;
                try {
                    node = JSON.readTree(line);
                } catch (JsonProcessingException e) {
                    throw new DataFormatException(file, where, null, "malformed JSON: " + dev.cdas.io.InputFiles.jsonError(e), e);
                }
                if (node == null || !node.isObject()) {
                    throw new DataFormatException(file, where, null,
                            "expected a JSON object, found " + (node == null ? "nothing" : node.getNodeType()));
                }
                rows.add(new Row((ObjectNode) node, where));
            }
        }
    }

    private static List<Row> readParquet(Path file, Set<String> required, Set<String> optional) throws IOException {
        ParquetFileReader reader = ParquetPairReader.open(file);
        try (reader) {
            MessageType schema = reader.getFooter().getFileMetaData().getSchema();
            for (String name : required) {
                if (!schema.containsField(name)) {
                    throw new DataFormatException(file, null, name, "missing column (the file has: "
                            + schema.getFields().stream().map(Type::getName).toList() + ")");
                }
            }
            Types.MessageTypeBuilder b = Types.buildMessage();
            for (Type t : schema.getFields()) {
                if (required.contains(t.getName()) || optional.contains(t.getName())) {
                    b.addField(t);
                }
            }
            List<Row> rows = new ArrayList<>();
            MessageType projection = b.named(schema.getName());
            reader.setRequestedSchema(projection);
            ColumnIOFactory io = new ColumnIOFactory();
            long row = 0;
            ParquetPageCheck check = new ParquetPageCheck();
            PageReadStore pages;
            while ((pages = reader.readNextRowGroup()) != null) {
                RecordReader<Group> records = io.getColumnIO(projection).getRecordReader(check.wrap(pages), new GroupRecordConverter(projection));
                for (long i = 0, n = pages.getRowCount(); i < n; i++, row++) {
                    String where = "row " + row;
                    rows.add(new Row(object(records.read(), projection, file, where), where));
                }
            }
            return rows;
        } catch (DataFormatException e) {
            throw e;
        } catch (IOException | RuntimeException e) {
            DataFormatException known = ParquetPageCheck.known(file, e);
            if (known != null) {
                throw known;
            }
            throw new DataFormatException(file, null, null, "cannot read Parquet data: " + e, e);
        }
    }

    /** A struct (or the whole record) as an object: each field's values. */
    private static ObjectNode object(Group g, GroupType type, Path file, String where) throws DataFormatException {
        ObjectNode o = NODES.objectNode();
        for (int f = 0; f < type.getFieldCount(); f++) {
            Type field = type.getType(f);
            String name = field.getName();
            int count = g.getFieldRepetitionCount(f);
            if (field.isRepetition(Type.Repetition.REPEATED)) {
                ArrayNode a = o.putArray(name);
                for (int i = 0; i < count; i++) {
                    a.add(value(g, f, i, field, file, where));
                }
            } else if (count == 0) {
                o.putNull(name);
            } else {
                o.set(name, value(g, f, 0, field, file, where));
            }
        }
        return o;
    }

    /** The {@code index}-th value of field {@code f}, a LIST group becoming an array. */
    private static JsonNode value(Group g, int f, int index, Type field, Path file, String where) throws DataFormatException {
        if (field.isPrimitive()) {
            return primitive(g, f, index, field.asPrimitiveType(), file, where);
        }
        Group child = g.getGroup(f, index);
        GroupType type = field.asGroupType();
        if (type.getLogicalTypeAnnotation() instanceof LogicalTypeAnnotation.ListLogicalTypeAnnotation
                && type.getFieldCount() == 1 && type.getType(0).isRepetition(Type.Repetition.REPEATED)) {
            Type repeated = type.getType(0);
            ArrayNode a = NODES.arrayNode();
            int n = child.getFieldRepetitionCount(0);
            for (int i = 0; i < n; i++) {
                if (!repeated.isPrimitive() && repeated.asGroupType().getFieldCount() == 1) {
                    // three-level list: repeated group list { optional element }
                    Group wrapper = child.getGroup(0, i);
                    Type element = repeated.asGroupType().getType(0);
                    a.add(wrapper.getFieldRepetitionCount(0) == 0 ? NODES.nullNode() : value(wrapper, 0, 0, element, file, where));
                } else {
                    a.add(value(child, 0, i, repeated, file, where)); // legacy two-level list
                }
            }
            return a;
        }
        return object(child, type, file, where);
    }

    private static JsonNode primitive(Group g, int f, int index, PrimitiveType type, Path file, String where)
            throws DataFormatException {
        return switch (type.getPrimitiveTypeName()) {
            case BOOLEAN -> NODES.booleanNode(g.getBoolean(f, index));
            case INT32 -> NODES.numberNode(g.getInteger(f, index));
            case INT64 -> NODES.numberNode(g.getLong(f, index));
            case FLOAT -> NODES.numberNode(g.getFloat(f, index));
            case DOUBLE -> NODES.numberNode(g.getDouble(f, index));
            case BINARY, FIXED_LEN_BYTE_ARRAY -> NODES.textNode(utf8(g.getBinary(f, index), type.getName(), file, where));
            case INT96 -> throw new DataFormatException(file, where, type.getName(), "INT96 values are not supported");
        };
    }

    private static String utf8(org.apache.parquet.io.api.Binary binary, String name, Path file, String where)
            throws DataFormatException {
        long max = ParquetPairReader.maxStringBytes();
        if (binary.length() > max) {
            throw new DataFormatException(file, where, name, "is " + binary.length() + " bytes, more than the limit of "
                    + max + " (system property cdas.parquet.maxStringBytes; docs/limits.md)");
        }
        try {
            return StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(binary.toByteBuffer()).toString();
        } catch (CharacterCodingException e) {
            throw new DataFormatException(file, where, name, "not valid UTF-8", e);
        }
    }
}
