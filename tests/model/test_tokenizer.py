from __future__ import annotations

import unicodedata

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from model.spans import bio_spans
from model.tokenizer import align, corpus_words, model_input, token_tags, token_texts, tokenize, word_range


def texts(line: str) -> list[str]:
    """The tokens' texts, which token_texts (bin/submit's faster way) must give as well."""
    out = [t.text for t in tokenize(line)]
    assert token_texts(line) == out
    return out


def test_issue_examples_split_quotes_parentheses_and_question_marks():
    assert texts('Who played Jack in "Titanic" (1997)?') == [
        "Who", "played", "Jack", "in", '"', "Titanic", '"', "(", "1997", ")", "?"]
    assert texts("Films directed by Steven Spielberg?")[-2:] == ["Spielberg", "?"]


@pytest.mark.parametrize("word", [
    "don't", "can't", "i'm", "o'brien", "O’Brien", "u.s.", "L.A.", "9/11", "1990s", "$5", "$5.50",
    "r&b", "spider-man", "x-men-2", "2.5", "1,000", "3:10", "mr.", "Dr.", "st.",
])
def test_words_movie_queries_need_stay_whole(word):
    assert texts(f"see {word} now") == ["see", word, "now"]
    assert texts(f"({word}),") == ["(", word, ")", ","]


@pytest.mark.parametrize("line, expected", [
    ("Spielberg's films", ["Spielberg", "'s", "films"]),
    ("Spielberg’s films", ["Spielberg", "’s", "films"]),  # the curly apostrophe too
    ("O'Brien's dog", ["O'Brien", "'s", "dog"]),
    ("end. Next", ["end", ".", "Next"]),
    ("'Titanic'", ["'", "Titanic", "'"]),
    ("rock-", ["rock", "-"]),
    ("2.", ["2", "."]),
    ("a--b", ["a", "-", "-", "b"]),
    ("tom & jerry", ["tom", "&", "jerry"]),
    ("Amélie?!", ["Amélie", "?", "!"]),
    ("mr.x", ["mr.", "x"]),
    ("hmm.", ["hmm", "."]),
])
def test_punctuation_splits(line, expected):
    assert texts(line) == expected


def test_offsets_point_into_the_original_line():
    line = '  Who played  Jack in "Titanic" (1997)?\t'
    tokens = tokenize(line)
    assert [line[t.start : t.end] for t in tokens] == [t.text for t in tokens]
    assert tokens[0].start == 2 and tokens[-1].end == len(line) - 1
    titanic = next(t for t in tokens if t.text == "Titanic")
    assert line[titanic.start - 1] == '"' == line[titanic.end]


@given(st.text())
def test_offsets_increase_never_overlap_and_round_trip_on_any_text(line):
    tokens = tokenize(line)
    previous_end = 0
    for t in tokens:
        assert previous_end <= t.start < t.end <= len(line)
        assert line[t.start : t.end] == t.text
        assert not any(c.isspace() for c in t.text)
        previous_end = t.end
    # Nothing but whitespace is left out.
    covered = {i for t in tokens for i in range(t.start, t.end)}
    assert all(line[i].isspace() for i in range(len(line)) if i not in covered)
    # What bin/submit stores, and the offsets a worker finds again from it, are the same.
    assert token_texts(line) == [t.text for t in tokens]
    assert align(token_texts(line), line) == tokens
    # Joined by single spaces (the line as most queries are), the offsets are counted, not searched.
    spaced = " ".join(t.text for t in tokens)
    assert [spaced[t.start : t.end] for t in align(token_texts(line), spaced)] == token_texts(line)
    assert align(token_texts(line), spaced) == align(token_texts(line), spaced + " ")


@given(st.lists(st.text(st.characters(categories=["L", "N"]), min_size=1), min_size=1),
       st.lists(st.sampled_from([" ", "  ", "\t", "\x1c", "\x85", "\u00a0", "\u2028", "\u3000"]), min_size=1))
def test_a_line_of_plain_words_is_its_whitespace_split(words, gaps):
    """token_texts splits such a line on whitespace, without the tokenizer's rules: the same tokens."""
    line = gaps[0] + "".join(w + gaps[i % len(gaps)] for i, w in enumerate(words))
    assert texts(line) == line.split()


@given(st.text())
def test_model_words_are_lower_case_alphanumeric_and_owned_in_order(line):
    tokens = tokenize(line)
    inp = model_input([t.text for t in tokens])
    assert len(inp.words) == len(inp.owners)
    assert inp.owners == [i for i, t in enumerate(tokens) for _ in corpus_words(t.text)]
    assert all(w and w.isalnum() and w == w.lower() for w in inp.words)


@pytest.mark.parametrize("token, words", [
    ("Don't", ["do", "n", "t"]), ("can't", ["ca", "n", "t"]), ("won’t", ["wo", "n", "t"]),
    ("1990s", ["1990", "s"]), ("u.s.", ["u", "s"]), ("9/11", ["9", "11"]), ("$5", ["5"]),
    ("R&B", ["r", "b"]), ("Spider-Man", ["spider", "man"]), ("'s", ["s"]), ("Mr.", ["mr"]),
    ("21st", ["21", "st"]), ("?", []), ('"', []),
])
def test_model_sees_words_as_the_corpus_writes_them(token, words):
    assert list(corpus_words(token)) == words


@pytest.mark.parametrize("token, words", [
    ("Gérard", ["gerard"]), ("Penélope", ["penelope"]), ("naïve", ["naive"]), ("Ça", ["ca"]),
    ("İstanbul", ["istanbul"]), ("ﬁlm", ["film"]), ("Mötley-Crüe", ["motley", "crue"]),
])
def test_accented_words_are_the_corpus_words_they_spell(token, words):
    """The corpus is ASCII: an accented name is the word the model learned, in either encoding."""
    for form in ("NFC", "NFD"):
        assert list(corpus_words(unicodedata.normalize(form, token))) == words


_ACCENTED = "aeinouAEINOU" + "áéíñóúàèçöüÁÉÑÖÜ" + "'-.,\"? "


@given(st.text(st.sampled_from(_ACCENTED)))
@example("É.U. and Penélope's film")
@example("Mötley Crüe, ça va? é.a. Zoë.")
def test_decomposed_text_is_cut_where_composed_text_is(line):
    """NFD ("e" + U+0301 for "é", as some systems write) keeps each letter's marks with it: the
    same tokens as the composed line, and the same words for the model."""
    nfd, nfc = unicodedata.normalize("NFD", line), unicodedata.normalize("NFC", line)
    assert [unicodedata.normalize("NFC", t) for t in texts(nfd)] == texts(nfc)
    assert model_input(texts(nfd)).words == model_input(texts(nfc)).words


def test_tags_come_back_to_tokens_and_entities_to_characters():
    line = 'Did Steven Spielberg\'s "Jaws" come out in the 1970s?'
    tokens = tokenize(line)
    inp = model_input([t.text for t in tokens])
    assert inp.words == ["did", "steven", "spielberg", "s", "jaws", "come", "out", "in", "the", "1970", "s"]
    word_tags = ["O", "B-Director", "I-Director", "O", "B-Plot", "O", "O", "O", "O", "B-Year", "I-Year"]
    tags = token_tags(inp, word_tags, len(tokens))
    found = {(s.label, line[tokens[s.start].start : tokens[s.end - 1].end]) for s in bio_spans(tags)}
    assert found == {("Director", "Steven Spielberg"), ("Plot", "Jaws"), ("Year", "1970s")}
    assert tags[-1] == "O"  # the question mark
    year = next(s for s in bio_spans(tags) if s.label == "Year")
    assert word_range(inp, year.start, year.end) == (9, 11)


def test_punctuation_inside_an_entity_the_model_continues_is_kept():
    line = "starring Tom Hanks, Meg Ryan"
    tokens = tokenize(line)
    inp = model_input([t.text for t in tokens])
    one = token_tags(inp, ["O", "B-Actor", "I-Actor", "I-Actor", "I-Actor"], len(tokens))
    assert [line[tokens[s.start].start : tokens[s.end - 1].end] for s in bio_spans(one)] == ["Tom Hanks, Meg Ryan"]
    two = token_tags(inp, ["O", "B-Actor", "I-Actor", "B-Actor", "I-Actor"], len(tokens))
    assert [line[tokens[s.start].start : tokens[s.end - 1].end] for s in bio_spans(two)] == ["Tom Hanks", "Meg Ryan"]
    assert word_range(inp, 3, 4) == (3, 3)  # the comma gave the model no word
