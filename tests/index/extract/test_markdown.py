"""Markdown: readable text, no markup syntax left for quotes to carry."""

from __future__ import annotations

from citeqa.index.extract import extract

NOTE = b"""# Bridges of the valley

The **new bridge** has *four* lanes and a [cycle path](https://example.org/path "Path").
It opens in `May 2025`.

## Costs

- Steel: **12 million**
- Labour: 3 million

1. First phase
2. Second phase

```python
total = 12 + 3  # million
```

> Quoted from the council minutes.

| Item | Cost |
|------|------|
| Steel | 12 |

![Drawing of the bridge](bridge.png)

<div class="note">raw html is dropped</div>

Line one with a hard break\\
line two.
"""


def test_markup_is_gone_and_the_text_reads_block_by_block():
    got = extract(NOTE, "text/markdown")
    assert got.media_type == "text/markdown" and got.title == "Bridges of the valley"
    assert got.text.split("\n\n") == [
        "Bridges of the valley",
        "The new bridge has four lanes and a cycle path. It opens in May 2025.",
        "Costs",
        "Steel: 12 million",
        "Labour: 3 million",
        "First phase",
        "Second phase",
        "total = 12 + 3  # million",
        "Quoted from the council minutes.",
        "Item | Cost",
        "Steel | 12",
        "Drawing of the bridge",
        "Line one with a hard break\nline two.",
    ]
    for syntax in ("**", "](", "```", "<div", "example.org", "# Bridges"):
        assert syntax not in got.text


def test_front_matter_gives_title_and_metadata_and_is_not_text():
    got = extract(b"---\ntitle: \"Valley notes\"\nauthor: Ann Lee\ndate: 2024-05-01\ntags: [a, b]\n---\n"
                  b"# Heading\n\nBody text.\n", None, "notes.md")
    assert got.title == "Valley notes"
    assert got.metadata == {"author": "Ann Lee", "date": "2024-05-01"}
    assert got.text == "Heading\n\nBody text."


def test_without_a_heading_there_is_no_title():
    got = extract(b"Just a paragraph of *notes*.", "text/markdown")
    assert got.title == "" and got.text == "Just a paragraph of notes."
