"""Caller region lookup (CC-03): what the phonenumbers geocoder really says, split and cached."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from callcore.region import PROVINCES, caller_region, split_place
from ingest.contract import CallerRegion


def region(province: str | None, city: str | None, carrier: str | None = None,
           country: str = "中国") -> CallerRegion:
    return CallerRegion(country=country, province=province, city=city, carrier=carrier)


@pytest.mark.parametrize("number", [
    "010-6234-5678", "01062345678", "(010) 62345678", "+86 10 6234 5678", "+861062345678",
    "0086 10 6234 5678", "+86 (0)10 6234 5678", "８６１０６２３４５６７８", " 010 6234 5678 ",
])
def test_cc03_beijing_fixed_line_with_and_without_prefixes(number: str) -> None:
    assert caller_region(number) == region("北京市", "北京市")


@pytest.mark.parametrize("number", ["021-6123-4567", "02161234567", "+86 21 6123 4567"])
def test_cc03_shanghai_fixed_line(number: str) -> None:
    assert caller_region(number) == region("上海市", "上海市")


@pytest.mark.parametrize("number", ["020-8765-4321", "02087654321", "+862087654321"])
def test_cc03_guangzhou_fixed_line(number: str) -> None:
    assert caller_region(number) == region("广东省", "广州市")


@pytest.mark.parametrize(("number", "expected"), [
    ("0755-1234-5678", region("广东省", "深圳市")),
    ("+86 755 1234 5678", region("广东省", "深圳市")),
    ("022-2345-6789", region("天津市", "天津市")),
    ("023-8888-8888", region("重庆市", "重庆市")),
    ("0571-8888-8888", region("浙江省", "杭州市")),
    ("0991-234-5678", region("新疆维吾尔自治区", "乌鲁木齐市")),
    ("0471-234-5678", region("内蒙古自治区", "呼和浩特市")),
    # One area code for several cities: the geocoder lists them and so do we.
    ("028-8333-3333", region("四川省", "成都市、资阳市、眉山市")),
])
def test_cc03_other_area_codes(number: str, expected: CallerRegion) -> None:
    assert caller_region(number) == expected


@pytest.mark.parametrize(("number", "expected"), [
    ("+8613800138000", region("北京市", "北京市", "中国移动")),
    ("13800138000", region("北京市", "北京市", "中国移动")),
    ("008613800138000", region("北京市", "北京市", "中国移动")),
    ("138-0013-8000", region("北京市", "北京市", "中国移动")),
    ("13912345678", region("江苏省", "常州市", "中国移动")),
    ("13600000000", region("广东省", "广州市", "中国移动")),
    ("15920000000", region("广东省", "深圳市", "中国移动")),
    ("15012345678", region("云南省", "昭通市", "中国移动")),
    ("13700000000", region("辽宁省", "沈阳市", "中国移动")),
    ("18612345678", region("北京市", "北京市", "中国联通")),
    ("13000080000", region("湖北省", "武汉市", "中国联通")),
    ("18912345678", region("江苏省", "常州市", "中国电信")),
    # The geocoder writes these three without 自治区 (新疆乌鲁木齐市, 内蒙古呼和浩特市,
    # 广西南宁市); the province comes out under its official name all the same.
    ("13000960000", region("新疆维吾尔自治区", "乌鲁木齐市", "中国联通")),
    ("13009500000", region("内蒙古自治区", "呼和浩特市", "中国联通")),
    ("13000690000", region("广西壮族自治区", "南宁市", "中国联通")),
    ("13228900000", region("西藏自治区", "拉萨市", "中国联通")),
])
def test_cc03_mobile_numbers_of_several_provinces(number: str, expected: CallerRegion) -> None:
    assert caller_region(number) == expected


def test_cc03_numbers_the_geocoder_places_in_china_only() -> None:
    assert caller_region("19912345678") == region(None, None, "中国电信")
    assert caller_region("19200000000") == region(None, None, "中国广电")
    assert caller_region("400-123-4567") == region(None, None)


@pytest.mark.parametrize(("number", "country"), [
    ("+1 202-555-0123", "美国"),
    ("001 202 555 0123", "美国"),
    ("+44 20 7946 0000", "英国"),
    ("+852 2123 4567", "香港"),
])
def test_cc03_foreign_numbers_give_the_country_only(number: str, country: str) -> None:
    assert caller_region(number) == CallerRegion(country=country)


@pytest.mark.parametrize("number", [
    "", "   ", "abc", "anonymous", "123", "+86123", "6234 5678", "10086", "95588",
    "+999 1234", "1" * 200, "x" * 10_000, "+", "tel:abc", "1380013800", "138001380001",
])
def test_cc03_invalid_or_unknown_numbers_give_none(number: str) -> None:
    assert caller_region(number) is None


def test_cc03_non_strings_give_none() -> None:
    odd: Any = None
    assert caller_region(odd) is None
    odd = 13800138000
    assert caller_region(odd) is None


def test_cc03_default_region_reads_national_numbers() -> None:
    assert caller_region("(202) 555-0123", default_region="US") == CallerRegion(country="美国")
    assert caller_region("+8613800138000", default_region="US") == region(
        "北京市", "北京市", "中国移动")
    with pytest.raises(ValueError, match=r"default_region='XX'.*such as 'CN'"):
        caller_region("13800138000", default_region="XX")


def test_cc03_results_are_cached_and_fit_the_event_contract() -> None:
    first = caller_region("+86 755 1234 5678")
    assert first is caller_region("+86 755 1234 5678")
    assert first is not None
    # What goes into CallOffered.caller_region must pass the contract's constraints.
    encoded = msgspec.json.encode(first)
    assert msgspec.json.decode(encoded, type=CallerRegion) == first


@pytest.mark.parametrize(("place", "expected"), [
    ("广东省深圳市", ("广东省", "深圳市")),
    ("北京市", ("北京市", "北京市")),
    ("天津", ("天津市", "天津市")),
    ("广东省", ("广东省", None)),
    ("新疆乌鲁木齐市", ("新疆维吾尔自治区", "乌鲁木齐市")),
    ("新疆维吾尔自治区乌鲁木齐市", ("新疆维吾尔自治区", "乌鲁木齐市")),
    ("黑龙江省哈尔滨市", ("黑龙江省", "哈尔滨市")),
    ("吉林省吉林市", ("吉林省", "吉林市")),
    ("青海省海南藏族自治州", ("青海省", "海南藏族自治州")),
    ("云南怒江", ("云南省", "怒江")),
    ("湖北省襄樊市、襄樊市", ("湖北省", "襄樊市")),
    ("某地", (None, "某地")),
    ("", (None, None)),
])
def test_cc03_split_place(place: str, expected: tuple[str | None, str | None]) -> None:
    assert split_place(place) == expected


def test_cc03_province_table_covers_the_31_mainland_divisions() -> None:
    assert len(PROVINCES) == 31
