// What masking knows of PostgreSQL's built-in types (OIDs are fixed across versions): which
// cannot carry text, which are text in both wire formats, and which binary forms it can take
// apart. Every type not named here (domains, enums, composites, extension types, tsvector ...)
// is read as text in text format, and in binary format is a value masking cannot read.

/** Types whose values cannot carry free text: numbers, booleans, dates and times, network and
 * geometric values, identifiers, bit strings, and ranges and arrays of those. Their text form is
 * digits and fixed syntax, and a detector's replacement would not be a valid value of the type:
 * a secret stored in one (a card number as bigint) is a matter for column masking. */
export const TEXTLESS_TYPES: ReadonlySet<number> = new Set([
  16, 18, 20, 21, 22, 23, 26, 27, 28, 29, 30, // bool "char" int8 int2 int2vector int4 oid tid xid cid oidvector
  600, 601, 602, 603, 604, 628, 718, // point lseg path box polygon line circle
  650, 700, 701, 774, 790, 829, 869, // cidr float4 float8 macaddr8 money macaddr inet
  1082, 1083, 1114, 1184, 1186, 1266, // date time timestamp timestamptz interval timetz
  1560, 1562, 1700, 2950, 2970, 3220, 5038, 5069, 2278, // bit varbit numeric uuid txid_snapshot pg_lsn pg_snapshot xid8 void
  3904, 3906, 3908, 3910, 3912, 3926, // int4range numrange tsrange tstzrange daterange int8range
  4451, 4532, 4533, 4534, 4535, 4536, // their multiranges
  // ... and arrays of all of the above
  1000, 1002, 1016, 1005, 1006, 1007, 1028, 1010, 1011, 1012, 1013,
  1017, 1018, 1019, 1020, 1027, 629, 719,
  651, 1021, 1022, 775, 791, 1040, 1041,
  1182, 1183, 1115, 1185, 1187, 1270,
  1561, 1563, 1231, 2951, 2949, 3221, 5039, 271,
  3905, 3907, 3909, 3911, 3913, 3927,
  6150, 6151, 6152, 6153, 6155, 6157,
]);

/** Types that name catalog objects (regclass, regtype ...): text in text format, and in binary
 * format an OID, which carries no text. */
export const BINARY_TEXTLESS_TYPES: ReadonlySet<number> = new Set([24, 2202, 2203, 2204, 2205, 2206, 3734, 3769, 4089, 4096, 4191]);

/** Types whose binary form is their text (UTF-8): text varchar bpchar name unknown xml refcursor json. */
export const TEXT_TYPES: ReadonlySet<number> = new Set([25, 1043, 1042, 19, 705, 142, 1790, 114]);
/** The JSON types, whose masked whole value is a JSON string. */
export const JSON_TYPE = 114;
export const JSONB_TYPE = 3802;
/** jsonb and jsonpath in binary: a version byte, then the text. */
export const VERSIONED_TEXT_TYPES: ReadonlySet<number> = new Set([JSONB_TYPE, 4072]);
export const BYTEA_TYPE = 17;
/** An anonymous record (`row(...)`): its binary form names each field's type. */
export const RECORD_TYPE = 2249;

/** Arrays of built-in types whose elements can carry text: their binary form names the element
 * type, so each element is read by that type's rules. (Arrays of textless types are above.) */
export const TEXT_ARRAY_TYPES: ReadonlySet<number> = new Set([
  1009, 1015, 1014, 1003, 143, 2201, 199, 3807, 4073, 1001, 2287, // text varchar bpchar name xml refcursor json jsonb jsonpath bytea record
  1008, 2207, 2208, 2209, 2210, 2211, 3735, 3770, 4090, 4097, 4192, 1263, 3643, 3645, 1034, // reg* cstring tsvector tsquery aclitem
]);
