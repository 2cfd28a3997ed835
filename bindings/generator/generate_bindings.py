#!/usr/bin/env python3
"""Generates the Java FFM bindings of native/include/cdas.h with libclang.

jextract is not obtainable on the project's machines, so this script stands in for it and keeps
its output jextract-shaped (a header class with static downcalls named like the C functions,
enum constants as static getters, one class per struct with static accessors over a
MemorySegment), so jextract can replace it later without touching the callers.

Every function, enum, struct, typedef and integer macro declared in the header is emitted; a type
the generator does not know is an error, never a silent omission.

    generate_bindings.py            rewrite bindings/src/main/java/dev/cdas/bindings
    generate_bindings.py --check    regenerate into a temporary folder; exit 1 with a diff when
                                    the committed files differ

Needs the libclang Python package (scripts/fetch-libclang.sh puts it into .deps/pyclang; run with
PYTHONPATH=.deps/pyclang).
"""

import argparse
import difflib
import hashlib
import os
import re
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_HEADER = os.path.join(ROOT, "native", "include", "cdas.h")
DEFAULT_OUT = os.path.join(ROOT, "bindings", "src", "main", "java")
DEFAULT_PACKAGE = "dev.cdas.bindings"
HEADER_CLASS = "cdas_h"

EXIT_DRIFT = 1
EXIT_ERROR = 2

JAVA_KEYWORDS = frozenset("""
    abstract assert boolean break byte case catch char class const continue default do double
    else enum extends final finally float for goto if implements import instanceof int interface
    long native new package private protected public return short static strictfp super switch
    synchronized this throw throws transient try void volatile while true false null var yield
    record sealed permits
""".split())


class GeneratorError(Exception):
    pass


def load_clang():
    try:
        import clang.cindex as cindex
    except ImportError as e:
        raise GeneratorError(
            "the libclang Python package is missing (%s); run scripts/fetch-libclang.sh .deps and "
            "put .deps/pyclang on PYTHONPATH" % e)
    return cindex


# ---- the C types the ABI uses, as jextract names their layouts -----------------------------------

class Prim:
    """A C scalar: its layout constant in the header class, its Java carrier and layout class."""

    def __init__(self, const, carrier, layout_class, definition):
        self.const = const
        self.carrier = carrier
        self.layout_class = layout_class
        self.definition = definition


PRIMS = {
    "C_BOOL": Prim("C_BOOL", "boolean", "OfBoolean", "ValueLayout.JAVA_BOOLEAN"),
    "C_CHAR": Prim("C_CHAR", "byte", "OfByte", "ValueLayout.JAVA_BYTE"),
    "C_SHORT": Prim("C_SHORT", "short", "OfShort", "ValueLayout.JAVA_SHORT"),
    "C_INT": Prim("C_INT", "int", "OfInt", "ValueLayout.JAVA_INT"),
    "C_LONG_LONG": Prim("C_LONG_LONG", "long", "OfLong", "ValueLayout.JAVA_LONG"),
    "C_FLOAT": Prim("C_FLOAT", "float", "OfFloat", "ValueLayout.JAVA_FLOAT"),
    "C_DOUBLE": Prim("C_DOUBLE", "double", "OfDouble", "ValueLayout.JAVA_DOUBLE"),
    "C_POINTER": Prim("C_POINTER", "MemorySegment", "AddressLayout",
                      "ValueLayout.ADDRESS.withTargetLayout("
                      "MemoryLayout.sequenceLayout(java.lang.Long.MAX_VALUE, ValueLayout.JAVA_BYTE))"),
    # LP64 (Linux, macOS): long is 64 bits, like jextract's output on those platforms.
    "C_LONG": Prim("C_LONG", "long", "OfLong", "ValueLayout.JAVA_LONG"),
}


def prim_for_kind(cindex, kind, type_for_error, where):
    K = cindex.TypeKind
    table = {
        K.BOOL: "C_BOOL",
        K.CHAR_S: "C_CHAR", K.SCHAR: "C_CHAR", K.CHAR_U: "C_CHAR", K.UCHAR: "C_CHAR",
        K.SHORT: "C_SHORT", K.USHORT: "C_SHORT",
        K.INT: "C_INT", K.UINT: "C_INT",
        K.LONG: "C_LONG", K.ULONG: "C_LONG",
        K.LONGLONG: "C_LONG_LONG", K.ULONGLONG: "C_LONG_LONG",
        K.FLOAT: "C_FLOAT", K.DOUBLE: "C_DOUBLE",
        K.POINTER: "C_POINTER",
    }
    if kind in table:
        return PRIMS[table[kind]]
    raise GeneratorError("%s: C type '%s' (%s) has no binding rule; teach generate_bindings.py"
                         % (where, type_for_error.spelling, kind))


class JType:
    """How a C type appears in Java: a scalar layout, a struct by value, or an array."""

    def __init__(self, prim=None, struct=None, array_of=None, count=0):
        self.prim = prim
        self.struct = struct
        self.array_of = array_of
        self.count = count

    @property
    def carrier(self):
        return self.prim.carrier if self.prim else "MemorySegment"

    def layout_expr(self, header_class):
        if self.prim:
            return "%s.%s" % (header_class, self.prim.const)
        if self.struct:
            return "%s.layout()" % self.struct
        return "MemoryLayout.sequenceLayout(%d, %s)" % (self.count, self.array_of.layout_expr(header_class))


def java_type(cindex, ctype, where):
    K = cindex.TypeKind
    canonical = ctype.get_canonical()
    kind = canonical.kind
    if kind == K.ENUM:
        underlying = canonical.get_declaration().enum_type.get_canonical()
        return JType(prim=prim_for_kind(cindex, underlying.kind, ctype, where))
    if kind == K.RECORD:
        decl = canonical.get_declaration()
        if decl.kind != cindex.CursorKind.STRUCT_DECL or not decl.spelling:
            raise GeneratorError("%s: only named structs are handled, not '%s'" % (where, ctype.spelling))
        return JType(struct=decl.spelling)
    if kind == K.CONSTANTARRAY:
        return JType(array_of=java_type(cindex, canonical.element_type, where), count=canonical.element_count)
    return JType(prim=prim_for_kind(cindex, kind, ctype, where))


def java_name(name, index):
    if not name:
        return "x%d" % index
    return name + "_" if name in JAVA_KEYWORDS else name


def snippet_doc(c_text, indent="    "):
    """A Javadoc comment quoting C code the way jextract does."""
    return ("%s/**\n%s * {@snippet lang=c :\n%s * %s\n%s * }\n%s */\n"
            % (indent, indent, indent, c_comment_safe(c_text), indent, indent))


def c_comment_safe(text):
    # The C declarations are quoted inside Java comments; "*/" would end them.
    return text.replace("*/", "*\\/").replace("@", "&#64;")


# ---- reading the header ----------------------------------------------------------------------

class Header:
    def __init__(self):
        self.functions = []   # (name, return JType or None, [(java name, JType, c type)], c prototype)
        self.enums = []       # (enum name, [(constant, value, JType)])
        self.structs = []     # (name, size, [(field, JType, offset bytes, c type)])
        self.typedefs = []    # (name, JType, c type)
        self.macros = []      # (name, int value)


def in_header(cursor, header_path):
    f = cursor.location.file
    return f is not None and os.path.realpath(f.name) == header_path


def integer_macro_value(tokens):
    """The value of an object-like macro that is an integer literal (optionally signed or in
    parentheses); None for anything else (include guards, attribute macros, expressions)."""
    body = [t for t in tokens if t not in ("(", ")")]
    sign = 1
    if body and body[0] in ("-", "+"):
        sign = -1 if body[0] == "-" else 1
        body = body[1:]
    if len(body) != 1:
        return None
    literal = body[0].rstrip("uUlL")
    try:
        return sign * int(literal, 0)
    except ValueError:
        return None


def read_header(cindex, header_path, clang_args):
    index = cindex.Index.create()
    tu = index.parse(header_path, args=["-x", "c", "-std=c11"] + clang_args,
                     options=cindex.TranslationUnit.PARSE_DETAILED_PROCESSING_RECORD)
    errors = [d for d in tu.diagnostics if d.severity >= cindex.Diagnostic.Error]
    if errors:
        raise GeneratorError("libclang could not parse %s:\n  %s"
                             % (header_path, "\n  ".join(str(d) for d in errors)))
    CK = cindex.CursorKind
    header = Header()
    seen_structs = set()
    for cursor in tu.cursor.get_children():
        if not in_header(cursor, header_path):
            continue
        where = "%s:%d" % (os.path.basename(header_path), cursor.location.line)
        if cursor.kind == CK.FUNCTION_DECL:
            if cursor.type.kind == cindex.TypeKind.FUNCTIONNOPROTO or cursor.type.is_function_variadic():
                raise GeneratorError("%s: %s must have a fixed prototype" % (where, cursor.spelling))
            result = cursor.result_type
            ret = None if result.get_canonical().kind == cindex.TypeKind.VOID else java_type(cindex, result, where)
            params, c_params = [], []
            for i, arg in enumerate(cursor.get_arguments()):
                params.append((java_name(arg.spelling, i), java_type(cindex, arg.type, where), arg.type.spelling))
                c_params.append(("%s %s" % (arg.type.spelling, arg.spelling)).strip())
            prototype = "%s %s(%s)" % (result.spelling, cursor.spelling, ", ".join(c_params) or "void")
            header.functions.append((cursor.spelling, ret, params, prototype))
        elif cursor.kind == CK.ENUM_DECL:
            constants = []
            underlying = java_type(cindex, cursor.enum_type, where)
            for c in cursor.get_children():
                if c.kind == CK.ENUM_CONSTANT_DECL:
                    constants.append((c.spelling, c.enum_value, underlying))
            header.enums.append((cursor.spelling or "(anonymous)", constants))
        elif cursor.kind == CK.STRUCT_DECL:
            if not cursor.is_definition() or cursor.spelling in seen_structs:
                continue  # opaque handles have no layout; Java sees them as pointers
            if not cursor.spelling:
                raise GeneratorError("%s: anonymous structs are not handled" % where)
            seen_structs.add(cursor.spelling)
            fields = []
            for f in cursor.get_children():
                if f.kind != CK.FIELD_DECL:
                    continue
                if f.is_bitfield():
                    raise GeneratorError("%s: bit-field %s.%s is not handled" % (where, cursor.spelling, f.spelling))
                offset_bits = f.get_field_offsetof()
                fields.append((f.spelling, java_type(cindex, f.type, where), offset_bits // 8, f.type.spelling,
                               f.type.get_size()))
            header.structs.append((cursor.spelling, cursor.type.get_size(), fields))
        elif cursor.kind == CK.TYPEDEF_DECL:
            underlying = cursor.underlying_typedef_type
            canonical = underlying.get_canonical()
            if canonical.kind == cindex.TypeKind.RECORD:
                decl = canonical.get_declaration()
                if decl.spelling != cursor.spelling:
                    raise GeneratorError("%s: typedef %s renames struct %s; not handled"
                                         % (where, cursor.spelling, decl.spelling))
                continue  # same name as its struct: the struct's class (or a pointer) already covers it
            if canonical.kind == cindex.TypeKind.FUNCTIONPROTO:
                raise GeneratorError("%s: function-pointer typedef %s is not handled" % (where, cursor.spelling))
            header.typedefs.append((cursor.spelling, java_type(cindex, underlying, where), underlying.spelling))
        elif cursor.kind == CK.MACRO_DEFINITION:
            if cursor.spelling.startswith("_"):
                continue
            tokens = [t.spelling for t in cursor.get_tokens()][1:]
            value = integer_macro_value(tokens)
            if value is not None:
                header.macros.append((cursor.spelling, value))
    return header


# ---- writing Java ------------------------------------------------------------------------------

def banner(header_rel):
    return ("// Generated by bindings/generator/generate_bindings.py from %s; do not edit.\n"
            "// Regenerate: PYTHONPATH=.deps/pyclang python3 bindings/generator/generate_bindings.py\n"
            % header_rel)


IMPORTABLE = (
    ("AddressLayout", "import java.lang.foreign.AddressLayout;"),
    ("Arena", "import java.lang.foreign.Arena;"),
    ("FunctionDescriptor", "import java.lang.foreign.FunctionDescriptor;"),
    ("GroupLayout", "import java.lang.foreign.GroupLayout;"),
    ("Linker", "import java.lang.foreign.Linker;"),
    ("MemoryLayout", "import java.lang.foreign.MemoryLayout;"),
    ("MemorySegment", "import java.lang.foreign.MemorySegment;"),
    ("SegmentAllocator", "import java.lang.foreign.SegmentAllocator;"),
    ("SymbolLookup", "import java.lang.foreign.SymbolLookup;"),
    ("ValueLayout", "import java.lang.foreign.ValueLayout;"),
    ("MethodHandle", "import java.lang.invoke.MethodHandle;"),
    ("Consumer", "import java.util.function.Consumer;"),
    ("groupElement", "import static java.lang.foreign.MemoryLayout.PathElement.groupElement;"),
)


def java_file(header_rel, package, body):
    """Banner, package and exactly the imports the body uses (unused ones would trip -Xlint)."""
    code = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    imports = [line for name, line in IMPORTABLE if re.search(r"\b%s\b" % name, code)]
    plain = [i for i in imports if not i.startswith("import static")]
    static = [i for i in imports if i.startswith("import static")]
    head = "\n".join(plain) + "\n"
    if static:
        head += "\n" + "\n".join(static) + "\n"
    return "%spackage %s;\n\n%s%s" % (banner(header_rel), package, head, body)


def int_literal(value, prim):
    if prim.carrier == "long":
        return "%dL" % value
    if prim.carrier == "int":
        # Unsigned 32-bit values wrap the way the C ABI passes them.
        if value > 0x7FFFFFFF:
            value -= 1 << 32
        return "%d" % value
    return "(%s)%d" % (prim.carrier, value)


def emit_header_class(header, package, header_rel, header_sha256):
    hc = HEADER_CLASS
    out = ["""
/**
 * Downcalls, constants and layouts of {@code %s}.
 * Symbols are looked up in the libraries loaded by this class loader (load libcdas first, e.g.
 * with {@code System.load}), then in the default lookup, the first time each function is used.
 */
@SuppressWarnings("unused")
public final class %s {

    private %s() {
    }

    /**
     * The SHA-256 of the header these bindings were generated from (64 lowercase hexadecimal
     * digits); a library built from the same header returns it from {@code cdas_header_sha256()}.
     */
    public static final String HEADER_SHA256 = "%s";

""" % (header_rel, hc, hc, header_sha256)]

    for name in PRIMS:
        p = PRIMS[name]
        layout_type = "AddressLayout" if p.layout_class == "AddressLayout" else "ValueLayout.%s" % p.layout_class
        out.append("    public static final %s %s = %s;\n" % (layout_type, p.const, p.definition))

    out.append("""
    static final SymbolLookup SYMBOL_LOOKUP = SymbolLookup.loaderLookup().or(Linker.nativeLinker().defaultLookup());

    static MemorySegment findOrThrow(String symbol) {
        return SYMBOL_LOOKUP.find(symbol)
                .orElseThrow(() -> new UnsatisfiedLinkError("unresolved symbol: " + symbol));
    }
""")

    for name, value in header.macros:
        prim = PRIMS["C_LONG_LONG"] if not (-(1 << 31) <= value < (1 << 31)) else PRIMS["C_INT"]
        out.append("""
    private static final %(t)s %(n)s = %(v)s;

%(doc)s    public static %(t)s %(n)s() {
        return %(n)s;
    }
""" % {"t": prim.carrier, "n": name, "v": int_literal(value, prim),
       "doc": snippet_doc("#define %s %d" % (name, value))})

    for enum_name, constants in header.enums:
        for const, value, jtype in constants:
            prim = jtype.prim
            out.append("""
    private static final %(t)s %(n)s = %(v)s;

%(doc)s    public static %(t)s %(n)s() {
        return %(n)s;
    }
""" % {"t": prim.carrier, "n": const, "v": int_literal(value, prim),
       "doc": snippet_doc("enum %s.%s = %d" % (enum_name, const, value))})

    for name, jtype, c_type in header.typedefs:
        if jtype.prim is None:
            raise GeneratorError("typedef %s of a non-scalar type is not handled" % name)
        p = jtype.prim
        layout_type = "AddressLayout" if p.layout_class == "AddressLayout" else "ValueLayout.%s" % p.layout_class
        out.append("""
%s    public static final %s %s = %s.%s;
""" % (snippet_doc("typedef %s %s" % (c_type, name)), layout_type, name, hc, p.const))

    for name, ret, params, prototype in header.functions:
        layouts = [j.layout_expr(hc) for _, j, _ in params]
        if ret is None:
            desc = "FunctionDescriptor.ofVoid(%s)" % ", ".join(layouts)
        else:
            desc = "FunctionDescriptor.of(%s)" % ", ".join([ret.layout_expr(hc)] + layouts)
        ret_carrier = "void" if ret is None else ret.carrier
        sig = ", ".join("%s %s" % (j.carrier, n) for n, j, _ in params)
        args = ", ".join(n for n, _, _ in params)
        call = "mh$.invokeExact(%s)" % args
        body = "%s;" % call if ret is None else "return (%s) %s;" % (ret_carrier, call)
        doc = snippet_doc(prototype)
        out.append("""
    private static final class %(n)s {
        static final FunctionDescriptor DESC = %(desc)s;
        static final MemorySegment ADDR = findOrThrow("%(n)s");
        static final MethodHandle HANDLE = Linker.nativeLinker().downcallHandle(ADDR, DESC);
    }

%(doc)s    public static FunctionDescriptor %(n)s$descriptor() {
        return %(n)s.DESC;
    }

%(doc)s    public static MethodHandle %(n)s$handle() {
        return %(n)s.HANDLE;
    }

%(doc)s    public static MemorySegment %(n)s$address() {
        return %(n)s.ADDR;
    }

%(doc)s    public static %(ret)s %(n)s(%(sig)s) {
        var mh$ = %(n)s.HANDLE;
        try {
            %(body)s
        } catch (Error | RuntimeException ex) {
            throw ex;
        } catch (Throwable ex$) {
            throw new AssertionError("should not reach here", ex$);
        }
    }
""" % {"n": name, "desc": desc, "doc": doc, "ret": ret_carrier, "sig": sig, "body": body})

    out.append("}\n")
    return java_file(header_rel, package, "".join(out))


def emit_struct(name, size, fields, package, header_rel):
    hc = HEADER_CLASS
    members, cursor = [], 0
    for fname, jtype, offset, _, fsize in fields:
        if offset > cursor:
            members.append("MemoryLayout.paddingLayout(%d)" % (offset - cursor))
        members.append('%s.withName("%s")' % (jtype.layout_expr(hc), fname))
        cursor = offset + fsize
    if size > cursor:
        members.append("MemoryLayout.paddingLayout(%d)" % (size - cursor))
    c_fields = "".join(" *     %s %s;\n" % (c_comment_safe(ct), f) for f, _, _, ct, _ in fields)
    out = ["""
/**
 * {@snippet lang=c :
 * struct %(n)s {
%(fields)s * }
 * }
 */
@SuppressWarnings("unused")
public final class %(n)s {

    private %(n)s() {
    }

    private static final GroupLayout $LAYOUT = MemoryLayout.structLayout(
        %(members)s
    ).withName("%(n)s");

    /** The layout of this struct. */
    public static GroupLayout layout() {
        return $LAYOUT;
    }
""" % {"n": name, "fields": c_fields, "members": ",\n        ".join(members)}]

    for fname, jtype, offset, ctype, _ in fields:
        doc = snippet_doc("%s %s" % (ctype, fname))
        if jtype.prim:
            p = jtype.prim
            layout_type = "AddressLayout" if p.layout_class == "AddressLayout" else "ValueLayout.%s" % p.layout_class
            out.append("""
    private static final %(lt)s %(f)s$LAYOUT = (%(lt)s) $LAYOUT.select(groupElement("%(f)s"));

%(doc)s    public static %(lt)s %(f)s$layout() {
        return %(f)s$LAYOUT;
    }

    private static final long %(f)s$OFFSET = %(off)d;

%(doc)s    public static long %(f)s$offset() {
        return %(f)s$OFFSET;
    }

%(doc)s    public static %(t)s %(f)s(MemorySegment struct) {
        return struct.get(%(f)s$LAYOUT, %(f)s$OFFSET);
    }

%(doc)s    public static void %(f)s(MemorySegment struct, %(t)s fieldValue) {
        struct.set(%(f)s$LAYOUT, %(f)s$OFFSET, fieldValue);
    }
""" % {"lt": layout_type, "f": fname, "doc": doc, "off": offset, "t": p.carrier})
        else:
            out.append("""
    private static final MemoryLayout %(f)s$LAYOUT = $LAYOUT.select(groupElement("%(f)s"));

%(doc)s    public static MemoryLayout %(f)s$layout() {
        return %(f)s$LAYOUT;
    }

    private static final long %(f)s$OFFSET = %(off)d;

%(doc)s    public static long %(f)s$offset() {
        return %(f)s$OFFSET;
    }

%(doc)s    public static MemorySegment %(f)s(MemorySegment struct) {
        return struct.asSlice(%(f)s$OFFSET, %(f)s$LAYOUT.byteSize());
    }

%(doc)s    public static void %(f)s(MemorySegment struct, MemorySegment fieldValue) {
        MemorySegment.copy(fieldValue, 0L, struct, %(f)s$OFFSET, %(f)s$LAYOUT.byteSize());
    }
""" % {"f": fname, "doc": doc, "off": offset})

    out.append("""
    /** The element at {@code index} of an array of this struct. */
    public static MemorySegment asSlice(MemorySegment array, long index) {
        return array.asSlice(layout().byteSize() * index);
    }

    /** The size of this struct in bytes. */
    public static long sizeof() {
        return layout().byteSize();
    }

    /** A zeroed instance from {@code allocator} (an {@code Arena}, for example). */
    public static MemorySegment allocate(SegmentAllocator allocator) {
        return allocator.allocate(layout());
    }

    /** A zeroed array of {@code elementCount} instances. */
    public static MemorySegment allocateArray(long elementCount, SegmentAllocator allocator) {
        return allocator.allocate(MemoryLayout.sequenceLayout(elementCount, layout()));
    }

    /** {@code addr} seen as one instance, alive as long as {@code arena}. */
    public static MemorySegment reinterpret(MemorySegment addr, Arena arena, Consumer<MemorySegment> cleanup) {
        return reinterpret(addr, 1, arena, cleanup);
    }

    /** {@code addr} seen as {@code elementCount} instances, alive as long as {@code arena}. */
    public static MemorySegment reinterpret(MemorySegment addr, long elementCount, Arena arena, Consumer<MemorySegment> cleanup) {
        return addr.reinterpret(layout().byteSize() * elementCount, arena, cleanup);
    }
}
""")
    return java_file(header_rel, package, "".join(out))


def generate(header_path, package, clang_args):
    cindex = load_clang()
    header_path = os.path.realpath(header_path)
    header = read_header(cindex, header_path, clang_args)
    try:
        header_rel = os.path.relpath(header_path, ROOT)
    except ValueError:
        header_rel = os.path.basename(header_path)
    if header_rel.startswith(".."):
        header_rel = os.path.basename(header_path)
    with open(header_path, "rb") as f:
        header_sha256 = hashlib.sha256(f.read()).hexdigest()
    files = {HEADER_CLASS + ".java": emit_header_class(header, package, header_rel, header_sha256)}
    for name, size, fields in header.structs:
        files[name + ".java"] = emit_struct(name, size, fields, package, header_rel)
    return files


# ---- writing files and checking drift -----------------------------------------------------------

def package_dir(out_root, package):
    return os.path.join(out_root, *package.split("."))


def is_generated(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.readline().startswith("// Generated by bindings/generator/generate_bindings.py")
    except OSError:
        return False


def write_files(files, directory):
    os.makedirs(directory, exist_ok=True)
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if name.endswith(".java") and name not in files and is_generated(path):
            os.remove(path)  # a declaration removed from the header
    for name, text in sorted(files.items()):
        with open(os.path.join(directory, name), "w", encoding="utf-8", newline="\n") as f:
            f.write(text)


def read_java_files(directory):
    if not os.path.isdir(directory):
        return {}
    result = {}
    for name in sorted(os.listdir(directory)):
        if name.endswith(".java"):
            with open(os.path.join(directory, name), encoding="utf-8") as f:
                result[name] = f.read()
    return result


def check(files, directory, package):
    with tempfile.TemporaryDirectory(prefix="cdas-bindings-") as tmp:
        fresh_dir = package_dir(tmp, package)
        write_files(files, fresh_dir)
        fresh = read_java_files(fresh_dir)
    committed = read_java_files(directory)
    rel = os.path.relpath(directory, ROOT)
    diff = []
    for name in sorted(set(fresh) | set(committed)):
        old, new = committed.get(name), fresh.get(name)
        if old == new:
            continue
        diff.extend(difflib.unified_diff(
            (old or "").splitlines(keepends=True), (new or "").splitlines(keepends=True),
            fromfile="%s/%s (committed)" % (rel, name) if old is not None else "/dev/null",
            tofile="%s/%s (generated)" % (rel, name) if new is not None else "/dev/null"))
    if diff:
        sys.stdout.write("".join(diff))
        sys.stderr.write("\nThe committed bindings in %s differ from what %s generates.\n"
                         "Regenerate them: PYTHONPATH=.deps/pyclang python3 bindings/generator/generate_bindings.py\n"
                         % (rel, os.path.relpath(os.path.realpath(sys.argv[0]), ROOT)))
        return EXIT_DRIFT
    print("bindings in %s are up to date (%d files)" % (rel, len(fresh)))
    return 0


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--header", default=DEFAULT_HEADER, help="the C header (default: native/include/cdas.h)")
    parser.add_argument("--out", default=DEFAULT_OUT, help="Java source root (default: bindings/src/main/java)")
    parser.add_argument("--package", default=DEFAULT_PACKAGE)
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 with a diff when the committed files differ")
    parser.add_argument("--clang-arg", action="append", default=[], help="extra argument for libclang")
    args = parser.parse_args(argv)
    try:
        files = generate(args.header, args.package, args.clang_arg)
        directory = package_dir(args.out, args.package)
        if args.check:
            return check(files, directory, args.package)
        write_files(files, directory)
        print("wrote %d files to %s" % (len(files), os.path.relpath(directory, ROOT)))
        return 0
    except GeneratorError as e:
        sys.stderr.write("generate_bindings.py: %s\n" % e)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
