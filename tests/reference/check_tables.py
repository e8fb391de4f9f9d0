#!/usr/bin/env python3
"""Check the shipped code tables in configs/ (partner_regions, provinces, hs_chapters,
customs_partner_codes). hs_chapters is pinned, chapter by chapter, to the default
factor-intensity table documented in shared/DOMAIN.md and configs/README.md.

Usage: check_tables.py [CONFIGS_DIR]   (default: the configs/ directory next to tests/)
Needs Python 3 and pycountry. Exits non-zero with a message for every failed check.
"""
import sys
from pathlib import Path

try:
    import pycountry
except ImportError:
    sys.exit("check_tables: pycountry is required (pip install pycountry)")

REGIONS = {
    "western_europe", "eastern_europe", "north_america", "latin_america", "africa",
    "middle_east", "central_asia", "south_asia", "southeast_asia", "east_asia", "oceania",
}
MACRO = {"east", "central", "west", "northeast"}
CATEGORIES = {"resource", "labor", "capital", "technology", "excluded"}

errors = []


def fail(msg):
    errors.append(msg)


def read_table(path, header, may_be_empty=()):
    """Naive CSV read: split on commas, no quoting. Returns list of rows (lists).

    Columns named in may_be_empty may hold an empty field; all others must not."""
    if not path.is_file():
        fail(f"{path}: missing")
        return []
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        fail(f"{path.name}: starts with a UTF-8 BOM")
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        fail(f"{path.name}: not valid UTF-8 ({e})")
        return []
    lines = text.splitlines()
    if not lines or lines[0] != ",".join(header):
        fail(f"{path.name}: header must be exactly {','.join(header)!r}, got {lines[0] if lines else ''!r}")
        return []
    rows = []
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            fail(f"{path.name}:{n}: empty line")
            continue
        if line.lstrip().startswith("#"):
            fail(f"{path.name}:{n}: comment line not allowed")
            continue
        if '"' in line:
            fail(f"{path.name}:{n}: quote character not allowed")
        fields = line.split(",")
        if len(fields) != len(header):
            fail(f"{path.name}:{n}: expected {len(header)} fields, got {len(fields)}")
            continue
        if any(f != f.strip() or (f == "" and h not in may_be_empty)
               for f, h in zip(fields, header)):
            fail(f"{path.name}:{n}: empty field or surrounding whitespace")
        rows.append(fields)
    return rows


def unique_keys(name, keys):
    seen, dup = set(), set()
    for k in keys:
        (dup if k in seen else seen).add(k)
    if dup:
        fail(f"{name}: duplicate keys {sorted(dup)}")
    return seen


def check_partners(d):
    rows = read_table(d / "partner_regions.csv", ["iso3", "name", "region"])
    keys = unique_keys("partner_regions.csv", [r[0] for r in rows])
    iso = {c.alpha_3 for c in pycountry.countries}
    if keys != iso:
        missing, extra = sorted(iso - keys), sorted(keys - iso)
        fail(f"partner_regions.csv: iso3 set differs from pycountry (missing {missing}, not ISO {extra})")
    bad = sorted({r[2] for r in rows} - REGIONS)
    if bad:
        fail(f"partner_regions.csv: unknown regions {bad}")
    unused = sorted(REGIONS - {r[2] for r in rows})
    if unused:
        fail(f"partner_regions.csv: regions never used {unused}")
    return len(rows)


def check_provinces(d):
    rows = read_table(d / "provinces.csv", ["code", "name", "name_zh", "macro_region"])
    codes = [r[0] for r in rows]
    keys = unique_keys("provinces.csv", codes)
    badc = [c for c in codes if not (len(c) == 2 and c.isascii() and c.isdigit())]
    if badc:
        fail(f"provinces.csv: codes not two digits {badc}")
    if len(keys) != 31:
        fail(f"provinces.csv: expected 31 unique codes, got {len(keys)}")
    if codes != sorted(codes):
        fail("provinces.csv: rows not sorted by code")
    macros = {r[3] for r in rows}
    if macros != MACRO:
        fail(f"provinces.csv: macro regions must be exactly {sorted(MACRO)}, got {sorted(macros)}")
    return len(rows)


# The default factor-intensity table of shared/DOMAIN.md (section 1, "Factor-intensity
# categories") and configs/README.md, written out from that text, independently of
# hs_chapters.csv: category -> inclusive chapter ranges. Chapter 77 does not exist.
HS_DOCUMENTED = {
    "resource": [(1, 27)],
    "labor": [(41, 71), (94, 97)],
    "capital": [(28, 29), (31, 40), (72, 84), (86, 87), (89, 89)],
    "technology": [(30, 30), (85, 85), (88, 88), (90, 93)],
    "excluded": [(98, 99)],
}
HS_NONEXISTENT = {77}


def documented_hs_chapters():
    """The documented table as chapter ("01".."99") -> category. Fails on a chapter the
    table itself puts in two categories (a typo in HS_DOCUMENTED)."""
    table = {}
    for category, ranges in HS_DOCUMENTED.items():
        for lo, hi in ranges:
            for i in range(lo, hi + 1):
                if i in HS_NONEXISTENT:
                    continue
                ch = f"{i:02d}"
                if ch in table:
                    raise AssertionError(f"HS_DOCUMENTED puts chapter {ch} in both "
                                         f"{table[ch]} and {category}")
                table[ch] = category
    return table


def check_hs_documented(rows):
    """Pins every chapter's category in hs_chapters.csv to the documented default table."""
    want = documented_hs_chapters()
    got = {}
    for r in rows:
        got.setdefault(r[0], r[1])
    wrong = [f"{ch} is {got[ch]}, documented {want[ch]}"
             for ch in sorted(want.keys() & got.keys()) if got[ch] != want[ch]]
    missing = [f"{ch} ({want[ch]})" for ch in sorted(want.keys() - got.keys())]
    extra = [f"{ch} ({got[ch]})" for ch in sorted(got.keys() - want.keys())]
    if wrong:
        fail("hs_chapters.csv: categories differ from the documented table "
             f"(shared/DOMAIN.md section 1, configs/README.md): {'; '.join(wrong)}")
    if missing:
        fail(f"hs_chapters.csv: documented chapters missing: {', '.join(missing)}")
    if extra:
        fail(f"hs_chapters.csv: chapters not in the documented table: {', '.join(extra)}")


def check_hs(d):
    rows = read_table(d / "hs_chapters.csv", ["chapter", "category"])
    chapters = [r[0] for r in rows]
    keys = unique_keys("hs_chapters.csv", chapters)
    want = {f"{i:02d}" for i in range(1, 100) if i != 77}
    if keys != want:
        fail(f"hs_chapters.csv: chapters must be 01-99 minus 77 (missing {sorted(want - keys)}, "
             f"extra {sorted(keys - want)})")
    if chapters != sorted(chapters):
        fail("hs_chapters.csv: rows not sorted by chapter")
    bad = sorted({r[1] for r in rows} - CATEGORIES)
    if bad:
        fail(f"hs_chapters.csv: unknown categories {bad} (allowed {sorted(CATEGORIES)})")
    check_hs_documented(rows)
    return len(rows)


# China Customs partner codes that the table must hold, with their ISO3 ("" = not a country)
# and the accepted customs Chinese names.
CUSTOMS_REQUIRED = {
    "110": ("HKG", {"香港"}), "116": ("JPN", {"日本"}), "121": ("MAC", {"澳门"}),
    "132": ("SGP", {"新加坡"}), "133": ("KOR", {"韩国"}), "141": ("VNM", {"越南"}),
    "142": ("CHN", {"中国"}), "143": ("TWN", {"台澎金马关税区", "中国台湾"}),
    "111": ("IND", {"印度"}), "112": ("IDN", {"印度尼西亚"}), "122": ("MYS", {"马来西亚"}),
    "129": ("PHL", {"菲律宾"}), "136": ("THA", {"泰国"}), "301": ("BEL", {"比利时"}),
    "303": ("GBR", {"英国"}), "304": ("DEU", {"德国"}), "305": ("FRA", {"法国"}),
    "307": ("ITA", {"意大利"}), "309": ("NLD", {"荷兰"}), "312": ("ESP", {"西班牙"}),
    "344": ("RUS", {"俄罗斯联邦"}), "410": ("BRA", {"巴西"}), "429": ("MEX", {"墨西哥"}),
    "501": ("CAN", {"加拿大"}), "502": ("USA", {"美国"}), "601": ("AUS", {"澳大利亚"}),
    "609": ("NZL", {"新西兰"}), "701": ("", {"国别不详"}),
    "145": ("KAZ", {"哈萨克斯坦"}), "341": ("KAZ", {"哈萨克斯坦"}),
    "146": ("KGZ", {"吉尔吉斯斯坦"}), "342": ("KGZ", {"吉尔吉斯斯坦"}),
}


def check_customs(d):
    name = "customs_partner_codes.csv"
    rows = read_table(d / name, ["code", "iso3", "name_zh"], may_be_empty={"iso3"})
    codes = [r[0] for r in rows]
    unique_keys(name, codes)
    badc = [c for c in codes if not (len(c) == 3 and c.isascii() and c.isdigit())]
    if badc:
        fail(f"{name}: codes not three digits {badc}")
    if codes != sorted(codes):
        fail(f"{name}: rows not sorted by code")
    badcont = [c for c in codes if c[:1] not in "1234567"]
    if badcont:
        fail(f"{name}: codes whose first digit is not a continent 1-7 {badcont}")
    iso = {c.alpha_3 for c in pycountry.countries}
    notiso = sorted({r[1] for r in rows if r[1] and r[1] not in iso})
    if notiso:
        fail(f"{name}: iso3 values not in pycountry {notiso}")
    table = {r[0]: (r[1], r[2]) for r in rows}
    for code, (want_iso, names) in sorted(CUSTOMS_REQUIRED.items()):
        got = table.get(code)
        if got is None:
            fail(f"{name}: required code {code} missing")
        elif got[0] != want_iso:
            fail(f"{name}: code {code} must map to {want_iso or '(empty)'}, got {got[0] or '(empty)'}")
        elif got[1] not in names:
            fail(f"{name}: code {code} name must be one of {sorted(names)}, got {got[1]!r}")
    n_countries = len({r[1] for r in rows if r[1]})
    n_empty = sum(1 for r in rows if not r[1])
    return len(rows), n_countries, n_empty


def main():
    if len(sys.argv) > 2:
        sys.exit(__doc__)
    d = Path(sys.argv[1]) if len(sys.argv) == 2 else Path(__file__).resolve().parents[2] / "configs"
    if not d.is_dir():
        sys.exit(f"check_tables: configs directory not found: {d}")
    n_p = check_partners(d)
    n_v = check_provinces(d)
    n_h = check_hs(d)
    n_c, n_ci, n_ce = check_customs(d)
    if errors:
        for e in errors:
            print(f"FAIL: {e}", file=sys.stderr)
        sys.exit(1)
    print(f"OK: partner_regions {n_p} codes / {len(REGIONS)} regions, provinces {n_v} / "
          f"{len(MACRO)} macro regions, hs_chapters {n_h} chapters, customs_partner_codes {n_c} "
          f"codes -> {n_ci} ISO3 + {n_ce} not a country ({d})")


if __name__ == "__main__":
    main()
