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

    /** The most bytes a page header is read from (pyarrow and parquet-mr keep them far smaller). */
    static final int MAX_PAGE_HEADER_BYTES = 1 << 20;

    /**
     * Every column chunk the footer declares lies within the file's {@code length} bytes, and so
     * does every page in it: parquet-mr allocates a buffer of a chunk's declared size, and one of a
     * page's declared size (its header's compressed_page_size), before reading them. A page may run
     * past its chunk's end (files of writers with PARQUET-246's bug do that, and parquet-mr reads
     * on for them) but not past the file's end.
     */
    private static void checkChunks(Path file, ParquetFileReader reader, long length) throws DataFormatException {
        java.util.List<org.apache.parquet.hadoop.metadata.BlockMetaData> groups = reader.getRowGroups();
        // Every chunk's bounds first, then every chunk's pages.
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
        try (java.nio.channels.FileChannel channel = java.nio.channels.FileChannel.open(file)) {
            for (int g = 0; g < groups.size(); g++) {
                for (org.apache.parquet.hadoop.metadata.ColumnChunkMetaData c : groups.get(g).getColumns()) {
                    checkPages(file, channel, "row group " + g, c.getPath().toDotString(), c.getStartingPos(),
                            c.getStartingPos() + c.getTotalSize(), length);
                }
            }
        } catch (DataFormatException e) {
            throw e;
        } catch (IOException e) {
            throw new DataFormatException(file, null, null, "not a readable Parquet file: " + e.getMessage(), e);
        }
    }

    /** Walks the page headers of the chunk [start, end): each page's bytes must lie within the file. */
    private static void checkPages(Path file, java.nio.channels.FileChannel channel, String where, String column,
            long start, long end, long length) throws DataFormatException, IOException {
        long pos = start;
        while (pos < end) {
            // Headers are small: read 8 KiB after the page's start, more only when the header goes on.
            org.apache.parquet.format.PageHeader header = null;
            long headerBytes = 0;
            for (int window = 8 << 10; header == null; window *= 8) {
                int n = (int) Math.min(Math.min(window, MAX_PAGE_HEADER_BYTES), length - pos);
                java.nio.ByteBuffer bytes = java.nio.ByteBuffer.allocate(n);
                while (bytes.hasRemaining() && channel.read(bytes, pos + bytes.position()) > 0) {
                    // until n bytes or the end of the file
                }
                java.io.ByteArrayInputStream in = new java.io.ByteArrayInputStream(bytes.array(), 0, bytes.position());
                try {
                    header = org.apache.parquet.format.Util.readPageHeader(in);
                    headerBytes = bytes.position() - in.available();
                } catch (IOException | RuntimeException e) {
                    if (n == window && window < MAX_PAGE_HEADER_BYTES) {
                        continue;  // perhaps cut off by the window: read more
                    }
                    throw new DataFormatException(file, where, column, "unreadable page header at offset " + pos + ": "
                            + e.getMessage(), e);
                }
            }
            long pageBytes = header.getCompressed_page_size();
            if (headerBytes <= 0 || pageBytes < 0 || pageBytes > length - pos - headerBytes) {
                throw new DataFormatException(file, where, column, "a page of " + pageBytes + " bytes at offset "
                        + (pos + headerBytes) + " does not fit in the file's " + length + " bytes");
            }
            pos += headerBytes + pageBytes;
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
