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

    private static void restore(String key, String old) {
        if (old == null) {
            System.clearProperty(key);
        } else {
            System.setProperty(key, old);
        }
    }
}
