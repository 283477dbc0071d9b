import pytest

from positivity.checks import Rejection, check_message, normalize_for_comparison, similarity

MESSAGE = "Take a slow walk outside today and enjoy the fresh air."
LONG_RECENT = (
    "Thank a neighbour for something kind they did this week, and tell them how much it meant."
)


def test_normalisation_casefolds_drops_punctuation_and_collapses_whitespace():
    normalized = normalize_for_comparison("  Hello,   WORLD!\nIt's  a - day. ")

    assert normalized == "hello world it s a day"


def test_identical_messages_are_fully_similar():
    assert similarity(MESSAGE, MESSAGE) == 1.0


def test_similarity_ignores_case_and_punctuation():
    assert similarity(MESSAGE, "take a SLOW walk, outside today -- and enjoy the fresh air!") == 1.0


def test_similarity_is_between_zero_and_one():
    for other in ("", "Zebras yawn.", MESSAGE.upper(), "Walk today."):
        assert 0.0 <= similarity(MESSAGE, other) <= 1.0


def test_a_reworded_message_is_similar_the_same_words_in_another_order_too():
    assert similarity(MESSAGE, "Enjoy the fresh air today and take a slow walk outside.") == 1.0


def test_a_plain_message_passes():
    assert check_message(MESSAGE, recent=()) is None


def test_a_rejection_is_a_frozen_value():
    rejection = Rejection("empty", "The message is empty.")

    assert rejection == Rejection("empty", "The message is empty.")
    with pytest.raises(AttributeError):
        rejection.code = "other"  # type: ignore[misc]


@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
def test_an_empty_message_is_rejected(text):
    rejection = check_message(text, recent=())

    assert rejection is not None
    assert rejection.code == "empty"


def test_an_emoji_is_rejected_and_named():
    rejection = check_message("Good morning \U0001f60a", recent=())

    assert rejection is not None
    assert rejection.code == "not_gsm"
    assert "\U0001f60a" in rejection.reason


def test_a_curly_apostrophe_is_rejected_with_its_plain_replacement():
    rejection = check_message("It\u2019s a lovely day.", recent=())

    assert rejection is not None
    assert rejection.code == "not_gsm"
    assert "\u2019" in rejection.reason
    assert '"\'"' in rejection.reason


def test_unicode_passes_when_allowed():
    assert check_message("Good morning \U0001f60a", recent=(), allow_unicode=True) is None


def test_allowed_unicode_is_still_counted_in_ucs2_segments():
    text = "\U0001f60a " + "a" * 68  # the emoji is a surrogate pair: 71 code units

    rejection = check_message(text, recent=(), allow_unicode=True)

    assert rejection is not None
    assert rejection.code == "too_long"
    assert "UCS-2" in rejection.reason


def test_a_message_of_exactly_one_segment_passes():
    assert check_message("a" * 160, recent=()) is None


def test_one_character_over_one_segment_is_rejected():
    rejection = check_message("a" * 161, recent=())

    assert rejection is not None
    assert rejection.code == "too_long"
    assert "2 GSM-7 segments" in rejection.reason


def test_one_character_over_one_segment_passes_when_two_are_allowed():
    assert check_message("a" * 161, recent=(), max_segments=2) is None


def test_an_extension_character_costs_two_units():
    rejection = check_message("a" * 159 + "\u20ac", recent=())

    assert rejection is not None
    assert rejection.code == "too_long"


@pytest.mark.parametrize(
    "text",
    [
        "Read more at https://example.org/today",
        "Read more at http://example.org",
        "Visit www.example today",
        "See example.org for details",
        "Our page: community-garden.co.uk",
        "Short link bit.ly/abc",
        "Shouting EXAMPLE.COM works too",
    ],
)
def test_a_link_is_rejected(text):
    rejection = check_message(text, recent=())

    assert rejection is not None
    assert rejection.code == "link"


@pytest.mark.parametrize(
    "text",
    [
        "Rest well.Tomorrow is a new day.",
        "Wait... then smile.",
        "Good morning. Take care of yourself.",
    ],
)
def test_full_stops_without_a_domain_are_not_links(text):
    assert check_message(text, recent=()) is None


@pytest.mark.parametrize(
    "text",
    [
        "Call us on 5551234567",
        "Call us on 555 123 4567",
        "Call us on (020) 7946-0958",
        "Call us on 020.7946.0958",
        "Text +44 to join",
        "Text +1",
    ],
)
def test_a_phone_number_is_rejected(text):
    rejection = check_message(text, recent=())

    assert rejection is not None
    assert rejection.code == "phone_number"


@pytest.mark.parametrize(
    "text",
    ["We have 12 volunteers and 3 gardens.", "Meet at 10 on the 3rd.", "A 123456 code."],
)
def test_short_numbers_are_not_phone_numbers(text):
    assert check_message(text, recent=()) is None


def test_a_light_rewording_of_a_recent_message_is_rejected():
    rewording = "Take a slow walk outdoors today and enjoy some fresh air!"

    rejection = check_message(rewording, recent=("Something else entirely.", MESSAGE))

    assert rejection is not None
    assert rejection.code == "too_similar"
    assert f"{similarity(rewording, MESSAGE):.0%}" in rejection.reason
    assert "Take a slow walk" in rejection.reason


def test_a_repeated_recent_message_is_rejected():
    rejection = check_message(MESSAGE.upper(), recent=(MESSAGE,))

    assert rejection is not None
    assert rejection.code == "too_similar"
    assert "100%" in rejection.reason


def test_the_recent_message_is_truncated_in_the_reason():
    rejection = check_message(LONG_RECENT.lower(), recent=(LONG_RECENT,))

    assert rejection is not None
    assert rejection.code == "too_similar"
    assert "Thank a neighbour" in rejection.reason
    assert LONG_RECENT not in rejection.reason
    assert "..." in rejection.reason


def test_a_different_message_is_not_too_similar():
    assert check_message(LONG_RECENT, recent=(MESSAGE,)) is None


def test_the_similarity_threshold_decides():
    rewording = "Take a slow walk outdoors today and enjoy some fresh air!"
    score = similarity(rewording, MESSAGE)

    assert check_message(rewording, recent=(MESSAGE,), similarity_threshold=score) is None
    rejection = check_message(rewording, recent=(MESSAGE,), similarity_threshold=score - 0.01)
    assert rejection is not None
    assert rejection.code == "too_similar"


def test_the_first_problem_is_reported():
    rejection = check_message("Call 555 123 4567 or see example.org", recent=(MESSAGE,))

    assert rejection is not None
    assert rejection.code == "link"
