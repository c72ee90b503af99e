"""s.*, re.*, cast.*, bytes.*, parse.*, time.*, rand.*: expected values by hand or from Python's stdlib."""
from __future__ import annotations

import base64
import calendar
import datetime as dt
import json
import math
import struct

from .helpers import A, B, Err, L, M, S, T

ENUM = {"type": "enum", "name": "Suit", "symbols": ["clubs", "hearts", "spades"]}
TS = calendar.timegm((2015, 3, 14, 9, 26, 53))  # a Saturday, 09:26:53 UTC
TSN = float(TS)


def when(zone: str) -> dt.datetime:
    from zoneinfo import ZoneInfo

    return dt.datetime.fromtimestamp(TS, ZoneInfo(zone))


NY = when("America/New_York")

CASES = [
    ("s.len", {"s.len": [S("hello")]}, 5), ("s.substr", {"s.substr": [S("hello"), 1, -1]}, "ell"),
    ("s.substrto", {"s.substrto": [S("hello"), 1, 3, S("ipp")]}, "hipplo"),
    ("s.contains", {"s.contains": [S("hello"), S("ll")]}, True), ("s.count", {"s.count": [S("banana"), S("an")]}, 2),
    ("s.count", {"s.count": [S("banana"), S("")]}, 0),
    ("s.index", {"s.index": [S("banana"), S("an")]}, 1), ("s.index", {"s.index": [S("banana"), S("x")]}, -1),
    ("s.rindex", {"s.rindex": [S("banana"), S("an")]}, 3),
    ("s.startswith", {"s.startswith": [S("banana"), S("ba")]}, True),
    ("s.endswith", {"s.endswith": [S("banana"), S("ba")]}, False),
    ("s.join", {"s.join": [A(["a", "b", "c"], "string"), S("-")]}, "a-b-c"),
    ("s.split", {"s.split": [S("a,b,,c"), S(",")]}, ["a", "b", "", "c"]), ("s.split", {"s.split": [S("abc"), S("")]},
                                                                          []),
    ("s.hex", {"s.hex": [L(255)]}, "ff"), ("s.hex", {"s.hex": [L(255), 6, True]}, "0000ff"),
    ("s.hex", {"s.hex": [L(-1)]}, Err(39111)), ("s.hex", {"s.hex": [L(1), -3, True]}, Err(39110)),
    ("s.int", {"s.int": [L(42), 5, False]}, "   42"), ("s.int", {"s.int": [L(42), -5, False]}, "42   "),
    ("s.int", {"s.int": [L(42), -5, True]}, Err(39240)),
    ("s.number", {"s.number": [3.25, None, None]}, "3.25"), ("s.number", {"s.number": [3.25, 8, 3]}, "   3.250"),
    ("s.number", {"s.number": [1.5e10, None, None]}, "1.5e+10"), ("s.number", {"s.number": [1.0, None, -1]},
                                                                   Err(39121)),
    ("s.concat", {"s.concat": [S("ab"), S("cd")]}, "abcd"), ("s.repeat", {"s.repeat": [S("ab"), 3]}, "ababab"),
    ("s.lower", {"s.lower": [S("AbC")]}, "abc"), ("s.upper", {"s.upper": [S("AbC")]}, "ABC"),
    ("s.lstrip", {"s.lstrip": [S("xxhixx"), S("x")]}, "hixx"), ("s.rstrip", {"s.rstrip": [S("xxhixx"), S("x")]},
                                                                  "xxhi"),
    ("s.strip", {"s.strip": [S("xyhiyx"), S("yx")]}, "hi"),
    ("s.replaceall", {"s.replaceall": [S("abab"), S("b"), S("X")]}, "aXaX"),
    ("s.replacefirst", {"s.replacefirst": [S("abab"), S("b"), S("X")]}, "aXab"),
    ("s.replacelast", {"s.replacelast": [S("abab"), S("b"), S("X")]}, "abaX"),
    ("s.translate", {"s.translate": [S("hello"), S("el"), S("a")]}, "hao"),
    # regular expressions (POSIX extended)
    ("re.index", {"re.index": [S("abcabc"), S("b+c")]}, [1, 3]), ("re.index", {"re.index": [S("abc"), S("(")]},
                                                                    Err(35000)),
    ("re.contains", {"re.contains": [S("abc"), S("[[:digit:]]")]}, False),
    ("re.contains", {"re.contains": [S("a1c"), S("[[:digit:]]")]}, True),
    ("re.count", {"re.count": [S("aaa bb a"), S("a+")]}, 2), ("re.count", {"re.count": [S("aaa"), S("a*")]}, 1),
    ("re.rindex", {"re.rindex": [S("abcabc"), S("b")]}, [4, 5]),
    ("re.groups", {"re.groups": [S("xx12-34"), S("([0-9]+)-([0-9]+)")]}, [[2, 7], [2, 4], [5, 7]]),
    ("re.indexall", {"re.indexall": [S("abab"), S("b")]}, [[1, 2], [3, 4]]),
    ("re.findall", {"re.findall": [S("a1b22c333"), S("[0-9]+")]}, ["1", "22", "333"]),
    ("re.findfirst", {"re.findfirst": [S("a1b22"), S("[0-9]+")]}, "1"),
    ("re.findfirst", {"re.findfirst": [S("ab"), S("[0-9]+")]}, None),
    ("re.findgroupsfirst", {"re.findgroupsfirst": [S("k=v; a=b"), S("([a-z])=([a-z])")]}, ["k=v", "k", "v"]),
    ("re.findgroupsall", {"re.findgroupsall": [S("k=v; a=b"), S("([a-z])=([a-z])")]},
     [["k=v", "k", "v"], ["a=b", "a", "b"]]),
    ("re.groupsall", {"re.groupsall": [S("ab ab"), S("(a)b")]}, [[[0, 2], [0, 1]], [[3, 5], [3, 4]]]),
    ("re.replacefirst", {"re.replacefirst": [S("a1b2"), S("[0-9]"), S("#")]}, "a#b2"),
    ("re.replacelast", {"re.replacelast": [S("a1b2"), S("[0-9]"), S("#")]}, "a1b#"),
    ("re.replaceall", {"re.replaceall": [S("a1b2"), S("[0-9]"), S("#")]}, "a#b#"),
    ("re.split", {"re.split": [S("a1b22c"), S("[0-9]+")]}, ["a", "b", "c"]),
    ("re.findall", {"re.findall": [B(b"a1b22"), B(b"[0-9]+")]}, [b"1", b"22"]),
    # cast
    ("cast.signed", {"cast.signed": [L(255), 8]}, -1), ("cast.signed", {"cast.signed": [L(1), 1]}, Err(17000)),
    ("cast.unsigned", {"cast.unsigned": [L(-1), 8]}, 255), ("cast.unsigned", {"cast.unsigned": [L(-1), 64]},
                                                              Err(17010)),
    ("cast.int", {"cast.int": [2.5]}, 3), ("cast.int", {"cast.int": [L(2**40)]}, Err(17020)),
    ("cast.long", {"cast.long": [-2.5]}, -2), ("cast.long", {"cast.long": [1e30]}, Err(17030)),
    ("cast.float", {"cast.float": [0.1]}, float(struct.unpack("f", struct.pack("f", 0.1))[0])),
    ("cast.double", {"cast.double": [3]}, 3.0),
    ("cast.fanoutBoolean", {"cast.fanoutBoolean": [T(ENUM, "hearts")]}, [False, True, False]),
    ("cast.fanoutInt", {"cast.fanoutInt": [S("b"), A(["a", "b"], "string"), True]}, [0, 1, 0]),
    ("cast.fanoutInt", {"cast.fanoutInt": [S("b"), A(["a", "a"], "string"), True]}, Err(17070)),
    ("cast.fanoutLong", {"cast.fanoutLong": [7, 5, 8, True]}, [0, 0, 1, 0]),
    ("cast.fanoutFloat", {"cast.fanoutFloat": [9, 5, 8, True]}, [0.0, 0.0, 0.0, 1.0]),
    ("cast.fanoutDouble", {"cast.fanoutDouble": [S("z"), A(["a", "b"], "string"), False]}, [0.0, 0.0]),
    ("cast.json", {"cast.json": [M({"a": 1.5})]}, json.dumps({"a": 1.5}, separators=(",", ":"))),
    ("cast.avro", {"cast.avro": [S("hi")]}, b"\x04hi"), ("cast.avro", {"cast.avro": [-1]}, b"\x01"),
    # bytes
    ("bytes.len", {"bytes.len": [B(b"abc")]}, 3), ("bytes.subseq", {"bytes.subseq": [B(b"abcdef"), 1, 3]}, b"bc"),
    ("bytes.subseqto", {"bytes.subseqto": [B(b"abcdef"), 1, 3, B(b"XYZ")]}, b"aXYZdef"),
    ("bytes.isAscii", {"bytes.isAscii": [B("é".encode())]}, False), ("bytes.isLatin1", {"bytes.isLatin1": [S("é")]},
                                                                     True),
    ("bytes.isUtf8", {"bytes.isUtf8": [B(b"\xff")]}, False), ("bytes.isUtf16", {"bytes.isUtf16": [B("hi".encode(
        "utf-16"))]}, True),
    ("bytes.isUtf16be", {"bytes.isUtf16be": [B(b"\x00h")]}, True), ("bytes.isUtf16le", {"bytes.isUtf16le": [B(b"h")]},
                                                                     False),
    ("bytes.decodeAscii", {"bytes.decodeAscii": [B(b"hi")]}, "hi"), ("bytes.decodeAscii", {"bytes.decodeAscii": [
        B(b"\xff")]}, Err(16090)),
    ("bytes.decodeLatin1", {"bytes.decodeLatin1": [B(b"\xe9")]}, "é"),
    ("bytes.decodeUtf8", {"bytes.decodeUtf8": [B("é".encode())]}, "é"),
    ("bytes.decodeUtf8", {"bytes.decodeUtf8": [B(b"\xff")]}, Err(16110)),
    ("bytes.decodeUtf16", {"bytes.decodeUtf16": [B("hé".encode("utf-16"))]}, "hé"),
    ("bytes.decodeUtf16be", {"bytes.decodeUtf16be": [B(b"\x00h\x00i")]}, "hi"),
    ("bytes.decodeUtf16le", {"bytes.decodeUtf16le": [B(b"h\x00i\x00")]}, "hi"),
    ("bytes.encodeAscii", {"bytes.encodeAscii": [S("hi")]}, b"hi"),
    ("bytes.encodeAscii", {"bytes.encodeAscii": [S("é")]}, Err(16150)),
    ("bytes.encodeLatin1", {"bytes.encodeLatin1": [S("é")]}, b"\xe9"),
    ("bytes.encodeUtf8", {"bytes.encodeUtf8": [S("é")]}, "é".encode()),
    ("bytes.encodeUtf16", {"bytes.encodeUtf16": [S("h")]}, "h".encode("utf-16")),
    ("bytes.encodeUtf16be", {"bytes.encodeUtf16be": [S("h")]}, b"\x00h"),
    ("bytes.encodeUtf16le", {"bytes.encodeUtf16le": [S("h")]}, b"h\x00"),
    ("bytes.toBase64", {"bytes.toBase64": [B(b"hello")]}, base64.b64encode(b"hello").decode()),
    ("bytes.fromBase64", {"bytes.fromBase64": [S("aGVsbG8=")]}, b"hello"),
    ("bytes.fromBase64", {"bytes.fromBase64": [S("a!")]}, Err(16220)),
    # parse
    ("parse.int", {"parse.int": [S(" -ff "), 16]}, -255), ("parse.int", {"parse.int": [S("12z"), 10]}, Err(33000)),
    ("parse.int", {"parse.int": [S("1"), 1]}, Err(33001)), ("parse.int", {"parse.int": [S("3000000000"), 10]},
                                                           Err(33000)),
    ("parse.long", {"parse.long": [S("3000000000"), 10]}, 3000000000),
    ("parse.float", {"parse.float": [S(" 1.5e2 ")]}, 150.0), ("parse.float", {"parse.float": [S("x")]}, Err(33020)),
    ("parse.double", {"parse.double": [S("-inf")]}, -math.inf), ("parse.double", {"parse.double": [S(".5")]}, 0.5),
    # time
    ("time.year", {"time.year": [TSN, S("")]}, 2015), ("time.year", {"time.year": [TSN, S("Mars/Olympus")]},
                                                       Err(40000)),
    ("time.year", {"time.year": [1e12, S("")]}, Err(40001)),
    ("time.monthOfYear", {"time.monthOfYear": [TSN, S("")]}, 3),
    ("time.dayOfYear", {"time.dayOfYear": [TSN, S("")]}, 31 + 28 + 14),
    ("time.dayOfMonth", {"time.dayOfMonth": [TSN, S("Asia/Tokyo")]}, 14),
    ("time.dayOfWeek", {"time.dayOfWeek": [TSN, S("")]}, 5),
    ("time.hourOfDay", {"time.hourOfDay": [TSN, S("America/New_York")]}, NY.hour),
    ("time.minuteOfHour", {"time.minuteOfHour": [TSN, S("")]}, 26),
    ("time.secondOfMinute", {"time.secondOfMinute": [TSN, S("")]}, 53),
    ("time.makeTimestamp", {"time.makeTimestamp": [2015, 3, 14, 9, 26, 53, 0, S("")]}, TSN),
    ("time.makeTimestamp", {"time.makeTimestamp": [2015, 2, 30, 0, 0, 0, 0, S("")]}, Err(40081)),
    ("time.isSecondOfMinute", {"time.isSecondOfMinute": [TSN, S(""), 50.0, 60.0]}, True),
    ("time.isSecondOfMinute", {"time.isSecondOfMinute": [TSN, S(""), 60.0, 50.0]}, Err(40090)),
    ("time.isMinuteOfHour", {"time.isMinuteOfHour": [TSN, S(""), 0.0, 26.0]}, False),
    ("time.isHourOfDay", {"time.isHourOfDay": [TSN, S(""), 9.0, 17.0]}, True),
    ("time.isDayOfWeek", {"time.isDayOfWeek": [TSN, S(""), 5.0, 7.0]}, True),
    ("time.isDayOfMonth", {"time.isDayOfMonth": [TSN, S(""), 1.0, 14.0]}, False),
    ("time.isMonthOfYear", {"time.isMonthOfYear": [TSN, S(""), 3.0, 4.0]}, True),
    ("time.isDayOfYear", {"time.isDayOfYear": [TSN, S(""), 1.0, 74.0]}, True),
    ("time.isWeekend", {"time.isWeekend": [TSN, S("")]}, True),
    ("time.isWorkHours", {"time.isWorkHours": [TSN - 86400.0, S("")]}, True),
    ("time.isWorkHours", {"time.isWorkHours": [TSN, S("")]}, False),
]
