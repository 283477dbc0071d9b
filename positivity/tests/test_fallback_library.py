import re
from difflib import SequenceMatcher

from positivity.checks import (
    SIMILARITY_THRESHOLD,
    check_message,
    normalize_for_comparison,
    similarity,
)
from positivity.fallback import load_fallback_library

# Plain letters and the punctuation that costs one GSM-7 septet and reads the same on
# every phone; no digits, so no message can look like a date, a price or a number.
PLAIN_TEXT = re.compile(r"[A-Za-z .,!?'\-:;]+")


def _pairs_above(texts: tuple[str, ...], threshold: float) -> list[tuple[str, str, float]]:
    """Every pair of ``texts`` more alike than ``threshold``, scored as by similarity().

    Calling similarity() on every pair rebuilds the matcher's index of the second text
    each time; a library of a few hundred messages has tens of thousands of pairs, so
    the index is built once per text and each pair is confirmed with similarity().
    """
    normalized = [normalize_for_comparison(text) for text in texts]
    words = [set(text.split()) for text in normalized]
    matcher = SequenceMatcher(None, autojunk=False)
    pairs = []
    for second, second_text in enumerate(normalized):
        matcher.set_seq2(second_text)
        for first in range(second):
            union = words[first] | words[second]
            is_candidate = len(words[first] & words[second]) > threshold * len(union)
            if not is_candidate:
                matcher.set_seq1(normalized[first])
                is_candidate = (
                    matcher.real_quick_ratio() > threshold
                    and matcher.quick_ratio() > threshold
                    and matcher.ratio() > threshold
                )
            if is_candidate:
                score = similarity(texts[first], texts[second])
                if score > threshold:
                    pairs.append((texts[first], texts[second], score))
    return pairs


def test_the_library_has_a_message_for_every_day_of_the_year():
    assert len(load_fallback_library()) >= 365


def test_the_library_is_loaded_once_and_kept():
    assert load_fallback_library() is load_fallback_library()


def test_library_entries_are_stripped_and_never_blank():
    for message in load_fallback_library():
        assert message
        assert message == message.strip()


def test_library_messages_are_unique_after_normalisation():
    normalized = [normalize_for_comparison(message) for message in load_fallback_library()]
    duplicates = sorted({text for text in normalized if normalized.count(text) > 1})
    assert duplicates == []


def test_every_library_message_passes_the_checks():
    rejected = {
        message: rejection
        for message in load_fallback_library()
        if (rejection := check_message(message, recent=())) is not None
    }
    assert rejected == {}


def test_library_messages_use_only_plain_letters_and_punctuation():
    unusual = [message for message in load_fallback_library() if not PLAIN_TEXT.fullmatch(message)]
    assert unusual == []


def test_the_pair_finder_scores_like_similarity():
    texts = (
        "Take a slow walk outside today and enjoy the fresh air.",
        "Take a slow walk outside today and enjoy the fresh morning air.",
        "Thank a neighbour for something kind they did this week.",
    )
    expected_score = similarity(texts[0], texts[1])

    assert _pairs_above(texts, SIMILARITY_THRESHOLD) == [(texts[0], texts[1], expected_score)]


def test_no_two_library_messages_are_near_duplicates():
    assert _pairs_above(load_fallback_library(), SIMILARITY_THRESHOLD) == []
