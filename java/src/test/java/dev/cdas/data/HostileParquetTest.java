package dev.cdas.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import org.apache.parquet.bytes.BytesInput;
import org.apache.parquet.compression.CompressionCodecFactory;
import org.apache.parquet.conf.PlainParquetConfiguration;
import org.apache.parquet.example.data.Group;
import org.apache.parquet.example.data.simple.SimpleGroupFactory;
import org.apache.parquet.hadoop.ParquetFileWriter;
import org.apache.parquet.hadoop.ParquetWriter;
import org.apache.parquet.hadoop.example.ExampleParquetWriter;
import org.apache.parquet.hadoop.metadata.CompressionCodecName;
import org.apache.parquet.io.LocalOutputFile;
import org.apache.parquet.io.api.Binary;
import org.apache.parquet.schema.MessageType;
import org.apache.parquet.schema.MessageTypeParser;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 16 items 2, 13 and 14 for Parquet pairs: a huge, highly compressed string is refused from
 * the page header before it is decompressed; invalid UTF-8 is refused as in JSONL; a garbage footer
 * is reported naming the file.
 */
class HostileParquetTest {
    private static final MessageType SCHEMA = MessageTypeParser.parseMessageType("message pairs {"
            + " required binary negative_input (STRING); required binary negative_output (STRING);"
            + " required binary positive_input (STRING); required binary positive_output (STRING);"
            + " required binary concept (STRING); required int64 concept_id; }");

    /** Zstd compression (aircompressor) without Hadoop's codec lookup. */
    private static final class ZstdOnly implements CompressionCodecFactory {
        @Override
        public BytesInputCompressor getCompressor(CompressionCodecName codec) {
            return new BytesInputCompressor() {
                @Override
                public BytesInput compress(BytesInput bytes) throws IOException {
                    byte[] in = bytes.toByteArray();
                    var z = new io.airlift.compress.zstd.ZstdCompressor();
                    byte[] out = new byte[z.maxCompressedLength(in.length)];
                    int n = z.compress(in, 0, in.length, out, 0, out.length);
                    return BytesInput.from(Arrays.copyOf(out, n));
                }

                @Override
                public CompressionCodecName getCodecName() {
                    return CompressionCodecName.ZSTD;
                }

                @Override
                public void release() {}
            };
        }

        @Override
        public BytesInputDecompressor getDecompressor(CompressionCodecName codec) {
            throw new UnsupportedOperationException();
        }

        @Override
        public void release() {}
    }

    private static Path write(Path file, byte[] negativeInput) throws IOException {
        try (ParquetWriter<Group> w = ExampleParquetWriter.builder(new LocalOutputFile(file))
                .withConf(new PlainParquetConfiguration())
                .withType(SCHEMA)
                .withCodecFactory(new ZstdOnly())
                .withCompressionCodec(CompressionCodecName.ZSTD)
                .withWriteMode(ParquetFileWriter.Mode.OVERWRITE)
                .build()) {
            Group g = new SimpleGroupFactory(SCHEMA).newGroup()
                    .append("negative_input", Binary.fromConstantByteArray(negativeInput))
                    .append("negative_output", "a").append("positive_input", "b").append("positive_output", "c")
                    .append("concept", "food").append("concept_id", 1L);
            w.write(g);
        }
        return file;
    }

    @Test
    void aWellFormedFileStillReads(@TempDir Path tmp) throws IOException {
        Path f = write(tmp.resolve("ok.parquet"), "hello".getBytes(StandardCharsets.UTF_8));
        assertEquals("hello", PairReader.read(f).getFirst().negativeInput());
    }

    @Test
    void hugeCompressedStringsAreRefusedBeforeDecompressing(@TempDir Path tmp) throws IOException {
        byte[] big = new byte[4 << 20]; // 4 MiB of 'a': a few hundred bytes of zstd
        Arrays.fill(big, (byte) 'a');
        Path f = write(tmp.resolve("big.parquet"), big);
        assertTrue(Files.size(f) < 64 << 10, "compressed: " + Files.size(f));
        String oldPage = System.getProperty("cdas.parquet.maxPageBytes");
        try {
            System.setProperty("cdas.parquet.maxPageBytes", Long.toString(1 << 20));
            DataFormatException e = assertTimeoutPreemptively(Duration.ofSeconds(20),
                    () -> assertThrows(DataFormatException.class, () -> PairReader.read(f)));
            assertTrue(e.getMessage().startsWith(f + ": a page decompresses to "), e.getMessage());
            assertTrue(e.getMessage().contains("more than the limit of 1048576"), e.getMessage());
        } finally {
            restore("cdas.parquet.maxPageBytes", oldPage);
        }
        String oldString = System.getProperty("cdas.parquet.maxStringBytes");
        try {
            System.setProperty("cdas.parquet.maxStringBytes", Long.toString(1 << 20));
            DataFormatException e = assertThrows(DataFormatException.class, () -> PairReader.read(f));
            assertTrue(e.getMessage().startsWith(f + " row 0, field \"negative_input\": is 4194304 bytes, more than the limit"),
                    e.getMessage());
        } finally {
            restore("cdas.parquet.maxStringBytes", oldString);
        }
    }

    @Test
    void invalidUtf8IsRefusedLikeJsonl(@TempDir Path tmp) throws IOException {
        Path f = write(tmp.resolve("bad.parquet"), new byte[] {'h', (byte) 0xff, 'i'});
        DataFormatException e = assertThrows(DataFormatException.class, () -> PairReader.read(f));
        assertTrue(e.getMessage().startsWith(f + " row 0, field \"negative_input\": not valid UTF-8"), e.getMessage());
    }

    @Test
    void aGarbageFooterNamesTheFile(@TempDir Path tmp) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(4 + 32 + 4 + 4).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        b.put("PAR1".getBytes(StandardCharsets.US_ASCII));
        byte[] junk = new byte[32];
        Arrays.fill(junk, (byte) 0x1f);
        b.put(junk).putInt(32).put("PAR1".getBytes(StandardCharsets.US_ASCII));
        Path f = Files.write(tmp.resolve("garbage.parquet"), b.array());
        DataFormatException e = assertThrows(DataFormatException.class, () -> PairReader.read(f));
        assertTrue(e.getMessage().startsWith(f + ": not a readable Parquet file"), e.getMessage());
    }

    /**
     * Four rows, uncompressed, dictionary-encoded: negative_input alternates between two values (a
     * dictionary of 2, bit width 1), every other column holds one value (a dictionary of 1).
     */
    /** A committed fuzzing input copied to {@code tmp/name}. */
    private static Path fuzzInput(Path tmp, String name, String resource) throws IOException {
        Path f = tmp.resolve(name);
        try (var in = HostileParquetTest.class.getResourceAsStream(resource)) {
            Files.copy(in, f);
        }
        return f;
    }

    /** The pair reader's refusal of {@code f} (within 20 s), which the table reader must give word for word. */
    private static String refusedByBothReaders(Path f) {
        DataFormatException e = assertTimeoutPreemptively(Duration.ofSeconds(20),
                () -> assertThrows(DataFormatException.class, () -> PairReader.read(f)));
        DataFormatException rows = assertThrows(DataFormatException.class,
                () -> TableRows.read(f, java.util.Set.of("negative_input"), java.util.Set.of()));
        assertEquals(e.getMessage(), rows.getMessage());
        return e.getMessage();
    }

    private static Path writeFourRows(Path file) throws IOException {
        try (ParquetWriter<Group> w = ExampleParquetWriter.builder(new LocalOutputFile(file))
                .withConf(new PlainParquetConfiguration())
                .withType(SCHEMA)
                .withCompressionCodec(CompressionCodecName.UNCOMPRESSED)
                .withDictionaryEncoding(true)
                .withWriteMode(ParquetFileWriter.Mode.OVERWRITE)
                .build()) {
            for (String v : new String[] {"pppppppp", "qqqqqqqq", "pppppppp", "qqqqqqqq"}) {
                w.write(new SimpleGroupFactory(SCHEMA).newGroup()
                        .append("negative_input", v)
                        .append("negative_output", "a").append("positive_input", "b").append("positive_output", "c")
                        .append("concept", "food").append("concept_id", 1L));
            }
        }
        return file;
    }

    /**
     * The fuzzer's finding (docs/fuzzing.md): a run header of a dictionary-indices section that
     * declares a bit-packed run of hundreds of millions of values in a page of 7 made parquet's
     * decoder allocate them (OutOfMemoryError). It is now refused before the decoder sees the page,
     * by the pair reader and by the table reader.
     */
    @Test
    void aBitPackedRunLongerThanItsPageIsRefusedBeforeDecoding(@TempDir Path tmp) throws IOException {
        Path f = fuzzInput(tmp, "pairs.parquet", "DataFilesFuzzTestInputs/parquetPairs/crash-1cc74c3d65145243be56869539596714de127c4f");
        assertTrue(Files.size(f) < 4096, "size " + Files.size(f));
        String message = refusedByBothReaders(f);
        assertEquals(f + " field \"negative_input\": dictionary indices: a bit-packed run of 222695432 values in a page of 7",
                message);
    }

    /**
     * The fuzzer's crash-8eb07b64...: a 2.6 KB file whose footer declares a column chunk far larger
     * than the file; parquet-mr allocated a buffer of the declared size to read it (OutOfMemoryError).
     * The footer's chunks are now checked against the file's length when it is opened, by both readers.
     */
    @Test
    void aColumnChunkLargerThanTheFileIsRefusedBeforeReading(@TempDir Path tmp) throws IOException {
        Path f = fuzzInput(tmp, "pairs.parquet", "DataFilesFuzzTestInputs/parquetPairs/crash-8eb07b64a82614572520830751c92d097a676ec8");
        assertTrue(Files.size(f) < 4096, "size " + Files.size(f));
        String message = refusedByBothReaders(f);
        assertTrue(message.startsWith(f + " row group 0, field \""), message);
        assertTrue(message.endsWith(" does not fit in the file's " + Files.size(f) + " bytes"), message);
    }

    /**
     * A page whose header declares more bytes than the file holds (the fuzzer's tableRowsParquet
     * input, then a file written here whose first page header is rewritten to claim 2^30 bytes) is
     * refused when the file is opened: parquet-mr would allocate the declared size before reading.
     */
    @Test
    void aPageLargerThanTheFileIsRefusedBeforeReading(@TempDir Path tmp) throws Exception {
        Path fuzzed = fuzzInput(tmp, "rows.parquet",
                "DataFilesFuzzTestInputs/tableRowsParquet/crash-6480944d3d2f8ff46fb616ac7b8216c6f7a2055e");
        DataFormatException fromFuzz = assertTimeoutPreemptively(Duration.ofSeconds(20), () -> assertThrows(
                DataFormatException.class, () -> TableRows.read(fuzzed, java.util.Set.of("negative_input"), java.util.Set.of())));
        assertTrue(fromFuzz.getMessage().startsWith(fuzzed + " row group "), fromFuzz.getMessage());

        Path ok = writeFourRows(tmp.resolve("ok.parquet"));
        byte[] bytes = Files.readAllBytes(ok);
        long start;
        try (var reader = org.apache.parquet.hadoop.ParquetFileReader.open(new org.apache.parquet.io.LocalInputFile(ok),
                org.apache.parquet.ParquetReadOptions.builder(new PlainParquetConfiguration()).build())) {
            start = reader.getRowGroups().get(0).getColumns().get(0).getStartingPos();
        }
        var in = new java.io.ByteArrayInputStream(bytes, (int) start, bytes.length - (int) start);
        org.apache.parquet.format.PageHeader header = org.apache.parquet.format.Util.readPageHeader(in);
        int headerEnd = bytes.length - in.available();
        header.setCompressed_page_size(1 << 30);
        var rewritten = new java.io.ByteArrayOutputStream();
        org.apache.parquet.format.Util.writePageHeader(header, rewritten);
        var hostile = new java.io.ByteArrayOutputStream();
        hostile.write(bytes, 0, (int) start);
        hostile.write(rewritten.toByteArray());
        hostile.write(bytes, headerEnd, bytes.length - headerEnd);
        Path bad = tmp.resolve("pairs.parquet");
        Files.write(bad, hostile.toByteArray());
        String message = refusedByBothReaders(bad);
        assertTrue(message.startsWith(bad + " row group 0, field \""), message);
        assertTrue(message.contains(": a page of 1073741824 bytes at offset "), message);
        assertTrue(message.endsWith(" does not fit in the file's " + Files.size(bad) + " bytes"), message);
        assertEquals(4, PairReader.read(ok).size());
    }

    /**
     * The same check on a file written here: the dictionary indices of negative_input's page of
     * four values (bit width 1, one bit-packed group: header 0x03, then 0b1010) are changed to claim
     * 63 groups (header 0x7f, 504 values). Unchanged, the file reads.
     */
    @Test
    void aRunHeaderClaimingMoreValuesThanThePageIsRefused(@TempDir Path tmp) throws IOException {
        Path ok = writeFourRows(tmp.resolve("ok.parquet"));
        assertEquals(java.util.List.of("pppppppp", "qqqqqqqq", "pppppppp", "qqqqqqqq"),
                PairReader.read(ok).stream().map(ConceptPair::negativeInput).toList());
        byte[] bytes = Files.readAllBytes(ok);
        byte[] run = {0x01, 0x03, 0x0a}; // bit width 1, a bit-packed run of 1 group, the values 0, 1, 0, 1
        int at = -1;
        for (int i = 0; i + run.length <= bytes.length; i++) {
            if (Arrays.equals(bytes, i, i + run.length, run, 0, run.length)) {
                assertEquals(-1, at, "the run occurs once");
                at = i;
            }
        }
        assertTrue(at >= 0, "the dictionary indices of negative_input are in the file");
        bytes[at + 1] = 0x7f;
        Path bad = Files.write(tmp.resolve("bad.parquet"), bytes);
        DataFormatException e = assertThrows(DataFormatException.class, () -> PairReader.read(bad));
        assertEquals(bad + " field \"negative_input\": dictionary indices: a bit-packed run of 504 values in a page of 4",
                e.getMessage());
    }

    /**
     * The values of one file are bounded (cdas.parquet.maxValues): four rows of six columns are 24
     * values, plus 7 dictionary entries (2 for negative_input, 1 for each other column).
     */
    @Test
    void theValuesOfAFileAreBounded(@TempDir Path tmp) throws IOException {
        Path f = writeFourRows(tmp.resolve("four.parquet"));
        String old = System.getProperty("cdas.parquet.maxValues");
        try {
            System.setProperty("cdas.parquet.maxValues", "32");
            assertEquals(4, PairReader.read(f).size());
            System.setProperty("cdas.parquet.maxValues", "31");
            assertEquals(4, PairReader.read(f).size());
            System.setProperty("cdas.parquet.maxValues", "30");
            DataFormatException e = assertThrows(DataFormatException.class, () -> PairReader.read(f));
            assertTrue(e.getMessage().startsWith(f + " field \""), e.getMessage());
            assertTrue(e.getMessage().endsWith("the file holds more than 30 values (system property cdas.parquet.maxValues;"
                    + " docs/limits.md)"), e.getMessage());
        } finally {
            restore("cdas.parquet.maxValues", old);
        }
    }

    /**
     * parquet-mr's v2 writer without dictionaries: data pages v2 (levels outside the compressed
     * data), DELTA_BINARY_PACKED integers and DELTA_BYTE_ARRAY strings. The checked integers (an
     * optional column: definition levels, a null) read as written, and a delta header claiming more
     * values than its page is refused; the strings are refused by name, since their prefix lengths
     * are allocated before they are checked.
     */
    @Test
    void deltaEncodedPagesV2AreCheckedOrRefusedByName(@TempDir Path tmp) throws IOException {
        MessageType schema = MessageTypeParser.parseMessageType(
                "message t { optional int64 answer; required binary question (STRING); }");
        Path f = tmp.resolve("v2.parquet");
        try (ParquetWriter<Group> w = ExampleParquetWriter.builder(new LocalOutputFile(f))
                .withConf(new PlainParquetConfiguration())
                .withType(schema)
                .withCompressionCodec(CompressionCodecName.UNCOMPRESSED)
                .withDictionaryEncoding(false)
                .withWriterVersion(org.apache.parquet.column.ParquetProperties.WriterVersion.PARQUET_2_0)
                .withWriteMode(ParquetFileWriter.Mode.OVERWRITE)
                .build()) {
            for (int i = 0; i < 300; i++) {
                Group g = new SimpleGroupFactory(schema).newGroup().append("question", "q" + i);
                if (i % 7 != 3) {
                    g.append("answer", (long) i * i - 5);
                }
                w.write(g);
            }
        }
        try (var reader = ParquetPairReader.open(f)) {
            var columns = reader.getFooter().getBlocks().getFirst().getColumns();
            assertTrue(columns.get(0).getEncodings().contains(org.apache.parquet.column.Encoding.DELTA_BINARY_PACKED),
                    columns.get(0).getEncodings().toString());
            assertTrue(columns.get(0).getEncodingStats().usesV2Pages(), "data pages v2");
        }
        List<TableRows.Row> rows = TableRows.read(f, java.util.Set.of("answer"), java.util.Set.of());
        assertEquals(300, rows.size());
        for (int i = 0; i < 300; i++) {
            var v = rows.get(i).values().get("answer");
            if (i % 7 == 3) {
                assertTrue(v.isNull(), "row " + i + ": " + v);
            } else {
                assertEquals((long) i * i - 5, v.longValue(), "row " + i);
            }
        }
        // the integers' delta header: block of 128 values in 4 miniblocks, 257 values (the 43 nulls are levels);
        // claiming 383 values in the page of 300 is refused before parquet sizes its buffer by it
        byte[] bytes = Files.readAllBytes(f);
        byte[] header = {(byte) 0x80, 0x01, 0x04, (byte) 0x81, 0x02};
        int at = -1;
        for (int i = 0; i + header.length <= bytes.length; i++) {
            if (Arrays.equals(bytes, i, i + header.length, header, 0, header.length)) {
                assertEquals(-1, at, "the header occurs once");
                at = i;
            }
        }
        assertTrue(at >= 0, "the delta header of answer is in the file");
        bytes[at + 3] = (byte) 0xff;
        Path bad = Files.write(tmp.resolve("bad-delta.parquet"), bytes);
        DataFormatException delta = assertThrows(DataFormatException.class,
                () -> TableRows.read(bad, java.util.Set.of("answer"), java.util.Set.of()));
        assertEquals(bad + " field \"answer\": values: a delta header declares 383 values in a page of 300", delta.getMessage());

        DataFormatException e = assertThrows(DataFormatException.class,
                () -> TableRows.read(f, java.util.Set.of("question"), java.util.Set.of()));
        assertEquals(f + " field \"question\": values encoded with DELTA_BYTE_ARRAY, which this reader does not read"
                + " (plain or dictionary encoding, pyarrow's default, is read)", e.getMessage());
    }

    private static void restore(String key, String old) {
        if (old == null) {
            System.clearProperty(key);
        } else {
            System.setProperty(key, old);
        }
    }
}
