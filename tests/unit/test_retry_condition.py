"""The retry_condition evaluator: Styx's SpEL subset, its null and type rules, and its safety limits."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from styx_actors.model import TriggerType
from styx_actors.retry_condition import (
    MAX_PARENTHESES,
    MAX_TREE_DEPTH,
    RetryCondition,
    RetryConditionSyntaxError,
    condition_allows_retry,
    parse_retry_condition,
)

STYX_EXAMPLE = "(#tries < 2 && #triggerType == 'backfill') || (#triggerType != 'backfill')"
NO_VARIABLES: dict[str, object] = {}


def evaluate(text: str, variables: dict[str, object] | None = None) -> bool:
    return parse_retry_condition(text).evaluate(variables or NO_VARIABLES)


@pytest.mark.parametrize(
    ("tries", "trigger_type", "allowed"),
    [
        (1, "backfill", True),
        (2, "backfill", False),
        (5, "natural", True),
        (5, "adhoc", True),
        (5, None, True),  # null != 'backfill'
    ],
)
def test_styx_example(tries: int, trigger_type: str | None, allowed: bool) -> None:
    assert evaluate(STYX_EXAMPLE, {"tries": tries, "triggerType": trigger_type}) is allowed


@pytest.mark.parametrize(
    "text",
    [
        "true",
        "TRUE",
        "True",
        "!false",
        "not false",
        "NOT false",
        "!!true",
        "1 == 1",
        "1 eq 1",
        "1 EQ 1",
        "1 != 2",
        "1 ne 2",
        "1 < 2",
        "1 lt 2",
        "2 <= 2",
        "2 le 2",
        "3 > 2",
        "3 gt 2",
        "2 >= 2",
        "2 ge 2",
        "true && true",
        "true and true",
        "true AND true",
        "false || true",
        "false or true",
        "false Or true",
        "1 == 1.0",
        "0x2A == 42",
        "42L == 42",
        "1e3 == 1000",
        "1.5e1 == 15",
        "2.5d == 2.5",
        "1f == 1.0",
        "'it''s' == \"it's\"",
        '"say ""hi""" == \'say "hi"\'',
        "'' == \"\"",
        "null == null",
        "NULL == null",
        "'b' > 'a'",
        "'ab' < 'b'",
        "false < true",
        "1 + 2 * 3 == 7",
        "(1 + 2) * 3 == 9",
        "10 - 2 - 3 == 5",
        "7 / 2 == 3",
        "-7 / 2 == -3",
        "7 / -2 == -3",
        "7 % 3 == 1",
        "-7 % 3 == -1",
        "7 % -3 == 1",
        "7 / 2.0 == 3.5",
        "7.5 % 2 == 1.5",
        "7 div 2 == 3",
        "7 MOD 3 == 1",
        "-1 < 0",
        "--1 == 1",
        "+1 == 1",
        "-(2 + 3) == -5",
        "'a' + 'b' == 'ab'",
        "'a' + 1 == 'a1'",
        "1 + 'a' == '1a'",
        "'a' + null == 'anull'",
        "'x' + true == 'xtrue'",
        "'ab' * 2 == 'abab'",
        "'a' * 0 == ''",
        "!true == false",  # `!` binds tighter than `==`
        "true || false && false",  # `&&` binds tighter than `||`
        "(1 < 2) == true",
        "true || 5",
        "!(false && 'x')",  # the right side is never evaluated
        "1 == 1 and (2 == 2 or 3 == 4)",
        "\t1\r\n==\n1 ",
        "1 != 'a'",
        "true != 1",
        "'1' != 1",  # different kinds are unequal, not errors
    ],
)
def test_true_conditions(text: str) -> None:
    assert evaluate(text) is True


@pytest.mark.parametrize(
    "text",
    [
        "false",
        "1 == 2",
        "1 eq 2",
        "'a' == 'b'",
        "'a' == \"A\"",
        "true == 1",
        "1 == '1'",
        "(true || false) && false",
        "(1 < 2) == false",
        "false && 5",
    ],
)
def test_false_conditions(text: str) -> None:
    assert evaluate(text) is False


@pytest.mark.parametrize(
    "text",
    [
        "21 * 2",
        "'foo'",
        "'true'",
        "1",
        "null",
        "#exitCode",
        "#tries",
        "1.5",  # not a boolean
        "!5",
        "not 'x'",
        "5 && true",
        "true && 5",
        "'true' || false",
        "false || null",  # logic needs booleans
        "'a' < 1",
        "1 >= 'a'",
        "true < 1",
        "'a' > true",  # no order between kinds
        "-'a' == 1",
        "+true == 1",
        "'a' - 1 == 1",
        "null + 1 == 1",
        "true * 2 == 2",
        "'a' / 1 == 1",
        "1 / 0 == 0",
        "1 % 0 == 0",
        "1.0 / 0 == 0",
        "1.5 % 0.0 == 0",
        "'a' * -1 == ''",
        "'a' * 257 != ''",  # SpEL caps repeated text at 256 characters
        "exitCode == 1",  # a bare name is a property of the (absent) root object
        "1e400 - 1e400 < 0",  # NaN orders false
        "1e400 % 1 == 0",  # no remainder of infinity
    ],
)
def test_non_boolean_results_and_evaluation_errors_do_not_allow_a_retry(text: str) -> None:
    assert evaluate(text, {"exitCode": 1, "tries": 2}) is False


def test_arithmetic_beyond_floating_point_range_is_an_evaluation_error() -> None:
    huge = " * ".join(["9223372036854775807L"] * 20)  # about 2^1260: no double can hold it
    assert evaluate(f"{huge} > 0") is True
    assert evaluate(f"{huge} * 1.5 > 0") is False


def test_repeated_text_up_to_the_cap() -> None:
    assert evaluate("'a' * 256 == 'aa' * 128") is True


def test_variables() -> None:
    variables = {"exitCode": 1, "tries": 3, "consecutiveFailures": 2, "triggerType": "backfill"}
    text = "#exitCode == 1 && #tries == 3 && #consecutiveFailures == 2 && #triggerType == 'backfill'"
    assert evaluate(text, variables) is True
    assert evaluate("#tries + #consecutiveFailures * 2 == 7", variables) is True


def test_unknown_variables_are_null() -> None:
    assert evaluate("#nope == null") is True
    assert evaluate("#nope == 0") is False


@pytest.mark.parametrize(
    ("text", "result"),
    [
        ("#exitCode == 1", False),
        ("#exitCode != 1", True),
        ("#exitCode == null", True),
        ("#exitCode < 1", True),  # null is smaller than anything
        ("#exitCode <= -1000", True),
        ("#exitCode > 1", False),
        ("#exitCode >= -1000", False),
        ("#exitCode <= null", True),
        ("#exitCode < null", False),
        ("#exitCode > 'a'", False),
        ("'a' > #exitCode", True),
        ("!(#exitCode == 1)", True),
        ("!#exitCode", False),  # `!` needs a boolean
        ("#exitCode && true", False),
    ],
)
def test_null_semantics(text: str, result: bool) -> None:
    assert evaluate(text, {"exitCode": None}) is result


def test_enum_variables_compare_by_value() -> None:
    assert evaluate("#triggerType == 'backfill'", {"triggerType": TriggerType.BACKFILL}) is True


def test_a_variable_of_an_unsupported_type_is_an_evaluation_error() -> None:
    assert evaluate("#tries != null", {"tries": [1]}) is False


def test_boolean_variables_are_booleans_not_numbers() -> None:
    assert evaluate("#flag == 1", {"flag": True}) is False
    assert evaluate("#flag && true", {"flag": True}) is True


def test_a_parsed_condition_is_reusable_with_other_variables() -> None:
    condition = parse_retry_condition("#tries < 3")
    assert isinstance(condition, RetryCondition)
    assert condition.text == "#tries < 3"
    assert [condition.evaluate({"tries": n}) for n in range(5)] == [True, True, True, False, False]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected a value but found the end of the expression at position 0"),
        ("   ", "expected a value but found the end of the expression at position 3"),
        ("#tries <", "expected a value but found the end of the expression at position 8"),
        ("(#tries < 2", "expected ')' but found the end of the expression at position 11"),
        ("#tries < 2)", "unexpected ')' after a complete expression at position 10"),
        ("1 2", "unexpected '2' after a complete expression at position 2"),
        ("1 < 2 < 3", "comparisons cannot be chained at position 6"),
        ("(1 == 1 != true)", "comparisons cannot be chained at position 8"),
        ("#", "expected a variable name after '#' at position 0"),
        ("# tries", "expected a variable name after '#' at position 0"),
        ("#1", "expected a variable name after '#' at position 0"),
        ("'abc", "unterminated string literal at position 0"),
        ('"it""s', "unterminated string literal at position 0"),
        ("#tries = 1", "assignment '=' is not supported (use '==' to compare) at position 7"),
        ("true & false", "unexpected character '&' at position 5"),
        ("true | false", "unexpected character '|' at position 5"),
        ("#a.b", "unexpected character '.' at position 2"),
        ("f()", "unexpected '(' after a complete expression at position 1"),
        ("1 < 2 == true", "comparisons cannot be chained at position 6"),
        ("true ? 1 : 2", "unexpected character '?' at position 5"),
        ("2 ^ 3", "unexpected character '^' at position 2"),
        ("1 == 2147483648", "the value 2147483648 cannot be parsed as an int at position 5"),
        ("1 == 9223372036854775808L", "the value 9223372036854775808L cannot be parsed as a long at position 5"),
        ("0xFFFFFFFF", "the value 0xFFFFFFFF cannot be parsed as an int at position 0"),
        ("&& true", "expected a value but found '&&' at position 0"),
        ("AND true", "expected a value but found 'AND' at position 0"),
        ("1 == 1 or", "expected a value but found the end of the expression at position 9"),
        ("é", "unexpected character 'é' at position 0"),
    ],
)
def test_syntax_errors(text: str, message: str) -> None:
    with pytest.raises(RetryConditionSyntaxError) as raised:
        parse_retry_condition(text)
    assert str(raised.value) == message
    assert isinstance(raised.value, ValueError)


def test_limits_are_in_range() -> None:
    assert parse_retry_condition("2147483647 == 2147483647").evaluate({}) is True
    assert parse_retry_condition("-2147483647 < 0").evaluate({}) is True


def test_parentheses_up_to_the_nesting_limit() -> None:
    depth = MAX_PARENTHESES
    assert evaluate("(" * depth + "true" + ")" * depth) is True
    with pytest.raises(RetryConditionSyntaxError, match="parentheses are nested more than 64 levels deep"):
        parse_retry_condition("(" * (depth + 1) + "true" + ")" * (depth + 1))


def test_tree_depth_up_to_the_limit() -> None:
    # Every prefix operator adds a level: 255 of them and the literal make 256 levels.
    assert evaluate("!" * (MAX_TREE_DEPTH - 2) + "true") is True
    assert evaluate("!" * (MAX_TREE_DEPTH - 1) + "true") is False
    with pytest.raises(RetryConditionSyntaxError, match="nested more than 256 levels deep"):
        parse_retry_condition("!" * MAX_TREE_DEPTH + "true")
    with pytest.raises(RetryConditionSyntaxError, match="nested more than 256 levels deep"):
        parse_retry_condition("1" + " + 1" * MAX_TREE_DEPTH + " > 0")


@pytest.mark.parametrize(
    "text",
    ["(" * 10_000, "(" * 10_000 + "1" + ")" * 10_000, "!" * 10_000 + "true", "-" * 10_000 + "1", "1+" * 10_000 + "1"],
    ids=["open", "balanced", "not", "minus", "sum"],
)
def test_huge_nesting_is_a_syntax_error_never_a_recursion_error(text: str) -> None:
    with pytest.raises(RetryConditionSyntaxError):
        parse_retry_condition(text)
    assert condition_allows_retry(text, {}) is False


def test_condition_allows_retry() -> None:
    assert condition_allows_retry(None, {}) is True  # no condition: nothing shortens the retries
    assert condition_allows_retry("#tries < 2", {"tries": 1}) is True
    assert condition_allows_retry("#tries < 2", {"tries": 2}) is False
    assert condition_allows_retry("#tries <", {"tries": 1}) is False  # parse error
    assert condition_allows_retry("21 * 2", {}) is False  # not a boolean


# -----------------------------------------------------------------------------------------------------------
# Properties: whatever the text, parsing raises only RetryConditionSyntaxError and evaluation returns a bool.

# Well-formed operands: variables (one unknown), numbers at and past the edges, strings, keywords.
_ATOM_TEXTS = [
    "#exitCode",
    "#tries",
    "#consecutiveFailures",
    "#triggerType",
    "#nope",
    "exitCode",
    "0",
    "1",
    "20",
    "2147483647",
    "0x1F",
    "3L",
    "1.5",
    "0.0",
    "1e308",
    "1e400",
    "'backfill'",
    "''",
    '"x"',
    "true",
    "false",
    "null",
]
_ATOMS = st.sampled_from(_ATOM_TEXTS)
# Any token, well placed or not: the atoms, more literals, every operator and stray punctuation.
_FRAGMENTS = st.sampled_from(
    [
        *_ATOM_TEXTS,
        "-1",
        "50",
        "'natural'",
        "'a'",
        *("==", "!=", "<", "<=", ">", ">=", "eq", "ne", "lt", "le", "gt", "ge"),
        *("&&", "||", "!", "and", "or", "not", "+", "-", "*", "/", "%", "div", "mod"),
        *("(", ")", "=", "&", "|", "?", ":", ".", "#", "'", '"'),
    ]
)
_OPERATORS = st.sampled_from(
    ["==", "!=", "<", "<=", ">", ">=", "eq", "lt", "&&", "||", "and", "or", "+", "-", "*", "/", "%", "div", "mod"]
)
# Well-formed conditions: every binary operation is parenthesised, so comparisons never chain.
_CONDITIONS = st.recursive(
    _ATOMS,
    lambda inner: st.one_of(
        st.tuples(inner, _OPERATORS, inner).map(lambda parts: "({} {} {})".format(*parts)),
        st.tuples(st.sampled_from(["!", "-", "+", "not "]), inner).map("".join),
    ),
    max_leaves=12,
)
_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=5),
    st.sampled_from(list(TriggerType)),
)
_VARIABLES = st.fixed_dictionaries(
    {"exitCode": _VALUES, "tries": _VALUES, "consecutiveFailures": _VALUES, "triggerType": _VALUES}
)


def _check_never_raises(text: str, variables: dict[str, object]) -> None:
    try:
        condition = parse_retry_condition(text)
    except RetryConditionSyntaxError:
        condition = None
    if condition is not None:
        assert isinstance(condition.evaluate(variables), bool)
    assert isinstance(condition_allows_retry(text, variables), bool)


@settings(max_examples=400, deadline=None)
@given(text=st.text(max_size=80), variables=_VARIABLES)
def test_arbitrary_text_never_raises_anything_else(text: str, variables: dict[str, object]) -> None:
    _check_never_raises(text, variables)


@settings(max_examples=600, deadline=None)
@given(fragments=st.lists(_FRAGMENTS, max_size=25), variables=_VARIABLES)
def test_token_soup_never_raises_anything_else(fragments: list[str], variables: dict[str, object]) -> None:
    _check_never_raises(" ".join(fragments), variables)


@settings(max_examples=600, deadline=None)
@given(text=_CONDITIONS, variables=_VARIABLES)
def test_well_formed_conditions_parse_and_evaluate_to_a_bool(text: str, variables: dict[str, object]) -> None:
    assert isinstance(parse_retry_condition(text).evaluate(variables), bool)
