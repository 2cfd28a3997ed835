package dev.cdas.data;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.apache.parquet.ParquetReadOptions;
import org.apache.parquet.column.page.PageReadStore;
import org.apache.parquet.conf.PlainParquetConfiguration;
import org.apache.parquet.example.data.Group;
import org.apache.parquet.example.data.simple.convert.GroupRecordConverter;
import org.apache.parquet.hadoop.ParquetFileReader;
import org.apache.parquet.io.ColumnIOFactory;
import org.apache.parquet.io.LocalInputFile;
import org.apache.parquet.io.RecordReader;
import org.apache.parquet.schema.LogicalTypeAnnotation;
import org.apache.parquet.schema.MessageType;
import org.apache.parquet.schema.PrimitiveType.PrimitiveTypeName;
import org.apache.parquet.schema.Type;
import org.apache.parquet.schema.Types;

/**
 * Reads pairs from Parquet (the format the public concept datasets ship in) with parquet-hadoop's
 * Hadoop-free API ({@link LocalInputFile}, {@link PlainParquetConfiguration}). Only the six
 * columns are read (others are ignored); text columns must be UTF-8 strings, {@code concept_id}
 * a 32- or 64-bit integer. A file of one concept may leave out {@code concept} and
 * {@code concept_id}, as in JSON Lines: its pairs belong to the concept named after the file
 * ({@link JsonlPairReader#defaultConcept}) with id 0. The columns are the fields' own names unless a
 * {@link PairColumns} maps them to others. Rows are numbered from 0 across row groups, as pandas does.
 */
public final class ParquetPairReader {
    static {
        // Parquet and Hadoop are on the class path (their jars split packages, so they cannot be
        // modules): module dev.cdas reads the unnamed module before it touches their classes.
        // On the class path this module is itself unnamed and the call does nothing.
        Module self = ParquetPairReader.class.getModule();
        ClassLoader loader = ParquetPairReader.class.getClassLoader();
        if (self.isNamed() && loader != null) {
            self.addReads(loader.getUnnamedModule());
        }
    }

    private ParquetPairReader() {}

    /**
     * The longest text value accepted, in bytes: 20 MiB by default (the JSONL reader's bound on a
     * string), system property {@code cdas.parquet.maxStringBytes} (docs/limits.md).
     */
    static long maxStringBytes() {
        return Long.getLong("cdas.parquet.maxStringBytes", 20L << 20);
    }

    /**
     * Reads every pair of the file, each field from the column of its own name.
     *
     * @param file the {@code .parquet} file
     * @return the pairs, in row order
     * @throws DataFormatException when the file is not valid pairs (the message names file, row and column)
     * @throws IOException         when the file cannot be read
     */
    public static List<ConceptPair> read(Path file) throws IOException {
        return read(file, PairColumns.DEFAULT);
    }

    /**
     * Opens a Parquet file with the project's decompressors; a file Parquet cannot read is a
     * DataFormatException naming it, and so is a footer whose column chunks do not lie within the
     * file (parquet-mr allocates a buffer of a chunk's declared size before reading it).
     */
    static ParquetFileReader open(Path file) throws DataFormatException {
        ParquetReadOptions options = ParquetReadOptions.builder(new PlainParquetConfiguration())
                .withCodecFactory(new ParquetDecompressors()).build();
        ParquetFileReader reader;
        long length;
        try {
            length = java.nio.file.Files.size(file);
            reader = ParquetFileReader.open(new LocalInputFile(file), options);
        } catch (IOException | RuntimeException e) {
            throw new DataFormatException(file, null, null, "not a readable Parquet file: " + e.getMessage(), e);
        }
        try {
            checkChunks(file, reader, length);
        } catch (DataFormatException | RuntimeException e) {
            try {
                reader.close();
            } catch (IOException | RuntimeException suppressed) {
                e.addSuppressed(suppressed);
            }
            throw e;
        }
        return reader;
    }

    /** Every column chunk the footer declares lies within the file's {@code length} bytes. */
    private static void checkChunks(Path file, ParquetFileReader reader, long length) throws DataFormatException {
        java.util.List<org.apache.parquet.hadoop.metadata.BlockMetaData> groups = reader.getRowGroups();
        for (int g = 0; g < groups.size(); g++) {
            for (org.apache.parquet.hadoop.metadata.ColumnChunkMetaData c : groups.get(g).getColumns()) {
                long start = c.getStartingPos();
                long size = c.getTotalSize();
                if (start < 0 || size < 0 || size > length || start > length - size) {
                    throw new DataFormatException(file, "row group " + g, c.getPath().toDotString(),
                            "a column chunk of " + size + " bytes at offset " + start + " does not fit in the file's "
                                    + length + " bytes");
                }
            }
        }
    }

    /**
     * Reads every pair of the file, each field from the column {@code columns} gives it.
     *
     * @param file    the {@code .parquet} file
     * @param columns the column of each field
     * @return the pairs, in row order
     * @throws DataFormatException when the file is not valid pairs (the message names file, row and column)
     * @throws IOException         when the file cannot be read
     */
    public static List<ConceptPair> read(Path file, PairColumns columns) throws IOException {
        ParquetFileReader reader = open(file);
        try (reader) {
            MessageType fileSchema = reader.getFooter().getFileMetaData().getSchema();
            MessageType projection = projection(file, fileSchema, columns);
            boolean hasConcept = projection.containsField(columns.concept());
            boolean hasConceptId = projection.containsField(columns.conceptId());
            reader.setRequestedSchema(projection);
            List<ConceptPair> pairs = new ArrayList<>();
            ColumnIOFactory columnIo = new ColumnIOFactory();
            long row = 0;
            ParquetPageCheck check = new ParquetPageCheck();
            PageReadStore pages;
            while ((pages = reader.readNextRowGroup()) != null) {
                RecordReader<Group> records = columnIo.getColumnIO(projection)
                        .getRecordReader(check.wrap(pages), new GroupRecordConverter(projection));
                for (long i = 0, n = pages.getRowCount(); i < n; i++, row++) {
                    Group g = records.read();
                    String where = "row " + row;
                    pairs.add(new ConceptPair(
                            text(g, columns.negativeInput(), file, where),
                            text(g, columns.negativeOutput(), file, where),
                            text(g, columns.positiveInput(), file, where),
                            text(g, columns.positiveOutput(), file, where),
                            hasConcept ? text(g, columns.concept(), file, where) : JsonlPairReader.defaultConcept(file),
                            hasConceptId ? integer(g, projection, columns.conceptId(), file, where) : 0,
                            file.getFileName() + " " + where));
                }
            }
            return pairs;
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

    /**
     * Checks the columns' presence and types up front, so a type error names the column once. The
     * four text columns are required; {@code concept} and {@code concept_id} are read when present.
     */
    private static MessageType projection(Path file, MessageType schema, PairColumns columns) throws DataFormatException {
        Types.MessageTypeBuilder b = Types.buildMessage();
        java.util.Set<String> added = new java.util.HashSet<>();
        List<String> text = new ArrayList<>(List.of(columns.negativeInput(), columns.negativeOutput(),
                columns.positiveInput(), columns.positiveOutput()));
        if (schema.containsField(columns.concept())) {
            text.add(columns.concept());
        }
        for (String name : text) {
            Type t = column(file, schema, name);
            boolean string = t.isPrimitive()
                    && t.asPrimitiveType().getPrimitiveTypeName() == PrimitiveTypeName.BINARY
                    && (t.getLogicalTypeAnnotation() == null
                        || t.getLogicalTypeAnnotation() instanceof LogicalTypeAnnotation.StringLogicalTypeAnnotation);
            if (!string) {
                throw new DataFormatException(file, null, name, "expected a string column, found " + t);
            }
            if (added.add(name)) {
                b.addField(t);
            }
        }
        if (schema.containsField(columns.conceptId())) {
            String name = columns.conceptId();
            Type id = column(file, schema, name);
            boolean integer = id.isPrimitive()
                    && (id.asPrimitiveType().getPrimitiveTypeName() == PrimitiveTypeName.INT64
                        || id.asPrimitiveType().getPrimitiveTypeName() == PrimitiveTypeName.INT32);
            if (!integer) {
                throw new DataFormatException(file, null, name, "expected an integer column, found " + id);
            }
            b.addField(id); // never one of the text columns: those are strings
        }
        return b.named(schema.getName());
    }

    private static Type column(Path file, MessageType schema, String name) throws DataFormatException {
        if (!schema.containsField(name)) {
            throw new DataFormatException(file, null, name, "missing column (the file has: "
                    + schema.getFields().stream().map(Type::getName).toList() + ")");
        }
        Type t = schema.getType(name);
        if (t.isRepetition(Type.Repetition.REPEATED)) {
            throw new DataFormatException(file, null, name, "is a repeated (list) column; expected one value per row");
        }
        return t;
    }

    private static String text(Group g, String name, Path file, String where) throws DataFormatException {
        if (g.getFieldRepetitionCount(name) == 0) {
            throw new DataFormatException(file, where, name, "is null");
        }
        org.apache.parquet.io.api.Binary binary = g.getBinary(name, 0);
        long max = maxStringBytes();
        if (binary.length() > max) {
            throw new DataFormatException(file, where, name, "is " + binary.length() + " bytes, more than the limit of "
                    + max + " (system property cdas.parquet.maxStringBytes; docs/limits.md)");
        }
        java.nio.ByteBuffer bytes = binary.toByteBuffer();
        try {
            return java.nio.charset.StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(java.nio.charset.CodingErrorAction.REPORT)
                    .onUnmappableCharacter(java.nio.charset.CodingErrorAction.REPORT)
                    .decode(bytes).toString();
        } catch (java.nio.charset.CharacterCodingException e) {
            throw new DataFormatException(file, where, name, "not valid UTF-8", e);
        }
    }

    private static long integer(Group g, MessageType projection, String name, Path file, String where)
            throws DataFormatException {
        if (g.getFieldRepetitionCount(name) == 0) {
            throw new DataFormatException(file, where, name, "is null");
        }
        return projection.getType(name).asPrimitiveType().getPrimitiveTypeName() == PrimitiveTypeName.INT64
                ? g.getLong(name, 0) : g.getInteger(name, 0);
    }
}
