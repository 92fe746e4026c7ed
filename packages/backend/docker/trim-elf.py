"""Trim the debug data out of ELF shared objects, in place, with nothing but the standard library.

    python trim-elf.py DIR [DIR ...]

Run by the Dockerfile's `deps` stage on the virtualenv, in place of binutils' `strip`, so the
build needs no `apt-get` round (about 4 s of a cold build) for it. Some wheels ship their native
modules unstripped: SQLAlchemy's Cython modules are 9.5 MB, of which 8.4 MB are DWARF.

What goes: the sections no program loads and nothing at run time reads,
  - `.debug_*` / `.zdebug_*` (DWARF: for debuggers only),
  - `.symtab` and the string table it links to (the static symbol table: for debuggers and
    `nm`; the dynamic linker resolves symbols through `.dynsym`, which stays). This is what
    `strip --strip-unneeded` drops from a shared object, and what the official Python image's
    own `-Wl,--strip-all` leaves out of libpython.
What stays, byte for byte: everything up to the end of the last segment the loader maps (code,
data, `.dynsym`, `.eh_frame` for C++ exceptions and unwinding), and every other section.

How: the dropped sections lie after the mapped segments (that is where linkers put non-allocated
sections); the kept non-allocated sections (`.comment`, `.shstrtab`, ...) are packed behind the
mapped part, a new section header table follows them, and the file is cut there. Section indices
are only renumbered above the last allocated section, so `.dynsym`'s section indices stay valid.

Conservative by design: a file is left untouched unless it is a well-formed ELF shared object
whose layout is the plain one above (no extended section numbering, no dropped section inside a
segment, no bytes after the mapped part that no section or header table accounts for, no kept
section linking to a dropped one). Each file is written to a temporary name and renamed over the
original, so an interrupted run leaves no half-written module.
"""

from __future__ import annotations

import os
import struct
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ET_DYN = 3
SHT_NOBITS = 8
SHT_REL, SHT_RELA = 9, 4
SHF_ALLOC = 0x2
SHF_INFO_LINK = 0x40
SHN_LORESERVE = 0xFF00


@dataclass
class Section:
    name: str
    fields: list[int]  # name, type, flags, addr, offset, size, link, info, addralign, entsize

    @property
    def type(self) -> int:
        return self.fields[1]

    @property
    def flags(self) -> int:
        return self.fields[2]

    @property
    def offset(self) -> int:
        return self.fields[4]

    @property
    def size(self) -> int:
        return self.fields[5]

    @property
    def file_size(self) -> int:
        return 0 if self.type == SHT_NOBITS else self.size

    @property
    def info_is_index(self) -> bool:
        """Whether sh_info names a section (relocations; SHF_INFO_LINK) rather than a count."""
        return self.type in (SHT_REL, SHT_RELA) or bool(self.flags & SHF_INFO_LINK)


def dropped(section: Section, index: int, symtab_strtab: int) -> bool:
    """Debug sections, `.symtab` and its string table; never a section the loader maps."""
    if section.flags & SHF_ALLOC:
        return False
    if section.name.startswith((".debug_", ".zdebug_")) or section.name == ".symtab":
        return True
    return index == symtab_strtab


def trim(data: bytes) -> bytes | None:
    """The trimmed file; None when there is nothing to drop or the layout is not the plain one."""
    try:
        return _trim(data)
    except (struct.error, ValueError, KeyError):
        return None  # truncated or inconsistent headers: not ours to fix


def _trim(data: bytes) -> bytes | None:
    if data[:4] != b"\x7fELF" or data[4] not in (1, 2) or data[5] not in (1, 2):
        return None
    wide = data[4] == 2  # ELFCLASS64
    end = "<" if data[5] == 1 else ">"  # ELFDATA2LSB / ELFDATA2MSB
    header = end + ("HHIQQQIHHHHHH" if wide else "HHIIIIIHHHHHH")
    e_type, _, _, _, phoff, shoff, _, _, phentsize, phnum, shentsize, shnum, shstrndx = (
        struct.unpack_from(header, data, 16)
    )
    shdr = end + ("IIQQQQIIQQ" if wide else "IIIIIIIIII")
    phdr = end + ("IIQQQQQQ" if wide else "IIIIIIII")
    if e_type != ET_DYN or shoff == 0 or shnum == 0 or shstrndx >= SHN_LORESERVE:
        return None  # not a shared object, or extended section numbering: leave it alone
    if shentsize != struct.calcsize(shdr) or shoff + shnum * shentsize > len(data):
        return None

    # The mapped part: program headers and every segment's file bytes.
    mapped_end = phoff + phnum * phentsize
    for i in range(phnum):
        segment = struct.unpack_from(phdr, data, phoff + i * phentsize)
        p_offset, p_filesz = (segment[2], segment[5]) if wide else (segment[1], segment[4])
        mapped_end = max(mapped_end, p_offset + p_filesz)

    raw = [list(struct.unpack_from(shdr, data, shoff + i * shentsize)) for i in range(shnum)]
    names_at = raw[shstrndx][4]
    sections = []
    for fields in raw:
        start = names_at + fields[0]
        name = data[start : data.index(b"\0", start)].decode("ascii", "replace")
        sections.append(Section(name, fields))
    symtabs = [i for i, s in enumerate(sections) if s.name == ".symtab"]
    symtab_strtab = sections[symtabs[0]].fields[6] if len(symtabs) == 1 else -1
    drop = {i for i, s in enumerate(sections) if i and dropped(s, i, symtab_strtab)}
    if not drop or shstrndx in drop:
        return None

    last_alloc = max((i for i, s in enumerate(sections) if s.flags & SHF_ALLOC), default=0)
    if min(drop) <= last_alloc:
        return None  # renumbering would shift sections that .dynsym entries point at
    for i in drop:
        if sections[i].file_size and sections[i].offset < mapped_end:
            return None  # a dropped section inside the mapped part: not the plain layout
    kept = [i for i in range(shnum) if i not in drop]
    for i in kept:
        link, info = sections[i].fields[6], sections[i].fields[7]
        if link in drop or (sections[i].info_is_index and info in drop):
            return None  # a kept section refers to a dropped one

    # Every byte after the mapped part must belong to a section or the header table (or be zero
    # padding): otherwise something unknown is appended there and cutting it off is not safe.
    tail = [(s.offset, s.offset + s.file_size) for s in sections if s.offset >= mapped_end]
    tail.append((shoff, shoff + shnum * shentsize))
    covered = mapped_end
    for start, stop in sorted(tail):
        if start > covered and data[covered:start].strip(b"\0"):
            return None
        covered = max(covered, stop)
    if data[covered:].strip(b"\0"):
        return None

    # Lay out: the mapped part as it is, then the kept sections stored after it, then the headers.
    out = bytearray(data[:mapped_end])
    renumber = {old: new for new, old in enumerate(kept)}
    for i in kept:
        section = sections[i]
        if section.offset < mapped_end:
            continue  # inside the mapped part: stays where it is
        if not section.file_size:
            section.fields[4] = len(out)  # no bytes in the file (SHT_NOBITS): just an offset
            continue
        align = max(section.fields[8], 1)
        out += b"\0" * (-len(out) % align)
        moved_to = len(out)
        out += data[section.offset : section.offset + section.size]
        section.fields[4] = moved_to
    out += b"\0" * (-len(out) % (8 if wide else 4))
    new_shoff = len(out)
    for i in kept:
        fields = sections[i].fields
        if fields[6]:
            fields[6] = renumber[fields[6]]
        if sections[i].info_is_index and fields[7]:
            fields[7] = renumber[fields[7]]
        out += struct.pack(shdr, *fields)
    # ELF header: e_shoff, e_shnum and e_shstrndx (offsets differ between 32 and 64 bits).
    struct.pack_into(end + ("Q" if wide else "I"), out, 0x28 if wide else 0x20, new_shoff)
    struct.pack_into(end + "HH", out, 0x3C if wide else 0x30, len(kept), renumber[shstrndx])
    return bytes(out)


def trim_file(path: Path) -> int:
    """Trim one file in place; the bytes saved (0 when it was left as it was)."""
    data = path.read_bytes()
    trimmed = trim(data)
    if trimmed is None or len(trimmed) >= len(data):
        return 0
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(trimmed)
        os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return len(data) - len(trimmed)


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    files = saved = 0
    for top in argv:
        for path in sorted(Path(top).rglob("*.so*")):
            if path.is_file() and not path.is_symlink() and (".so" in path.suffixes):
                gain = trim_file(path)
                files += gain > 0
                saved += gain
    print(f"trim-elf: {files} shared objects trimmed, {saved / 1e6:.1f} MB saved")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
