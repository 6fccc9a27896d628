"""Caller region from the phone number (CC-03): country, province, city and carrier.

Uses the ``phonenumbers`` geocoder and carrier data in Chinese: a fixed line's area code
(010, 021, 0755) or a mobile number's first seven digits give the place, e.g. 北京市 or
广东省深圳市, which is split into province and city. Results are cached, since callers repeat.
"""

from __future__ import annotations

from functools import lru_cache

import phonenumbers
from phonenumbers import carrier, geocoder

from ingest.contract import CallerRegion

__all__ = ["PROVINCES", "caller_region", "split_place"]

PROVINCES: dict[str, tuple[str, ...]] = {
    "北京市": ("北京",),
    "天津市": ("天津",),
    "上海市": ("上海",),
    "重庆市": ("重庆",),
    "河北省": ("河北",),
    "山西省": ("山西",),
    "辽宁省": ("辽宁",),
    "吉林省": ("吉林",),
    "黑龙江省": ("黑龙江",),
    "江苏省": ("江苏",),
    "浙江省": ("浙江",),
    "安徽省": ("安徽",),
    "福建省": ("福建",),
    "江西省": ("江西",),
    "山东省": ("山东",),
    "河南省": ("河南",),
    "湖北省": ("湖北",),
    "湖南省": ("湖南",),
    "广东省": ("广东",),
    "海南省": ("海南",),
    "四川省": ("四川",),
    "贵州省": ("贵州",),
    "云南省": ("云南",),
    "陕西省": ("陕西",),
    "甘肃省": ("甘肃",),
    "青海省": ("青海",),
    "内蒙古自治区": ("内蒙古",),
    "广西壮族自治区": ("广西",),
    "西藏自治区": ("西藏",),
    "宁夏回族自治区": ("宁夏",),
    "新疆维吾尔自治区": ("新疆",),
}
"""Mainland provincial-level divisions (+86) by official name, with the short forms the
geocoder also uses (it writes both 新疆维吾尔自治区乌鲁木齐市 and 新疆乌鲁木齐市)."""

_MUNICIPALITIES = frozenset({"北京市", "天津市", "上海市", "重庆市"})
# Longest first, so 黑龙江省 is tried before any shorter name it could start with.
_PREFIXES: tuple[tuple[str, str], ...] = tuple(sorted(
    ((name, official) for official, short in PROVINCES.items() for name in (official, *short)),
    key=lambda pair: -len(pair[0]),
))
_CHINA = 86


def split_place(place: str) -> tuple[str | None, str | None]:
    """Split a geocoder description into (province, city), both official names.

    ``广东省深圳市`` -> (广东省, 深圳市); a municipality ``北京市`` or ``天津`` -> (北京市, 北京市);
    ``新疆乌鲁木齐市`` -> (新疆维吾尔自治区, 乌鲁木齐市); a province alone -> (province, None). When
    an area code serves several cities the city keeps the geocoder's list, e.g. ``成都市、资阳市、
    眉山市``. A description that names no province gives (None, the description).
    """
    place = place.strip()
    for name, official in _PREFIXES:
        if place.startswith(name):
            rest = place[len(name):]
            if official in _MUNICIPALITIES:
                return official, official
            cities = list(dict.fromkeys(part for part in rest.split("、") if part))
            return official, "、".join(cities) or None
    return None, place or None


def caller_region(number: str, *, default_region: str = "CN") -> CallerRegion | None:
    """Where ``number`` belongs (CC-03), or ``None`` when it is invalid or unknown.

    Accepts what switches deliver: ``+8613800138000``, ``008613800138000``, ``13800138000``,
    ``010-6234-5678``, ``+86 10 6234 5678``, full-width digits; numbers without a country code
    are read as ``default_region`` (an ISO 3166 code). Chinese numbers give province, city and,
    for mobiles, the carrier that issued the prefix (a ported number keeps its original
    carrier); mobile prefixes the geocoder does not place (some 16x, 18x, 19x blocks) and
    400/800 numbers give the country only. Foreign numbers give the country only. Names are in
    Chinese (中国, 美国, 广东省, 中国移动).

    A caller number is outside input: withheld, garbage, too short, or not a valid number
    (including local numbers dialled without an area code and service numbers like 10086)
    give ``None`` rather than an error, so one odd caller never breaks call handling. Only a
    wrong ``default_region`` raises, as that is a configuration mistake.
    """
    if default_region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"default_region={default_region!r} is not a region phonenumbers "
                         "knows; use an ISO 3166 code such as 'CN'")
    if not isinstance(number, str):
        return None
    return _lookup(number.strip(), default_region)


@lru_cache(maxsize=65_536)
def _lookup(number: str, default_region: str) -> CallerRegion | None:
    if not number or len(number) > 64:
        return None
    try:
        parsed = phonenumbers.parse(number, default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    country = geocoder.country_name_for_number(parsed, "zh") or None
    if parsed.country_code != _CHINA:
        return CallerRegion(country=country) if country else None
    place = geocoder.description_for_number(parsed, "zh")
    province, city = split_place(place) if place and place != country else (None, None)
    return CallerRegion(
        country=country,
        province=province,
        city=city,
        carrier=carrier.name_for_number(parsed, "zh") or None,
    )
