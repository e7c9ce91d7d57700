"""Files as people have them: encodings, separators, quoted newlines, phone forms; refusals."""

from __future__ import annotations

import pytest

from contacts.importing import ImportFileError, contacts_import, open_csv
from contacts.models import Contact

pytestmark = pytest.mark.django_db

ROWS = [
    ["name", "phone", "email", "optInSms"],
    ["José Álvarez", "098765 43210", "jose@example.com", "true"],
    ["Asha", "+91 98111 11111", "", ""],
    ["Ravi", "0091 98222 22222", "", "FALSE"],
]


def as_text(delimiter: str) -> str:
    return "".join(delimiter.join(row) + "\r\n" for row in ROWS)


def imported(data: bytes):
    result = contacts_import(rows=open_csv(data))
    assert result.bad_rows == [], [bad.reason for bad in result.bad_rows]
    return result


def expect_the_three_contacts() -> None:
    assert sorted(Contact.objects.values_list("name", "phone", "opt_in_sms")) == [
        ("Asha", "+919811111111", False),
        ("José Álvarez", "+919876543210", True),
        ("Ravi", "+919822222222", False),
    ]


@pytest.mark.parametrize(
    ("label", "data"),
    [
        ("utf-8, commas", as_text(",").encode()),
        ("utf-8 with BOM, semicolons (Excel in Europe)", b"\xef\xbb\xbf" + as_text(";").encode()),
        ("utf-16 with BOM, tabs (Excel's Unicode text)", as_text("\t").encode("utf-16")),
        ("utf-16-le without BOM, tabs", as_text("\t").encode("utf-16-le")),
        ("utf-16-be with BOM, commas", b"\xfe\xff" + as_text(",").encode("utf-16-be")),
    ],
)
def test_a_file_is_read_whatever_its_encoding_and_separator(label, data):
    result = imported(data)

    assert (result.read, result.created) == (3, 3), label
    expect_the_three_contacts()


def test_a_quoted_value_may_hold_the_separator_and_a_newline_and_lines_are_counted_right():
    data = (
        b'name,phone,email\n"Rao, Asha\nsecond line",+919811111111,\n'
        b"Bad,12345,\n"  # row 2 starts on line 4
    )

    result = contacts_import(rows=open_csv(data))

    assert Contact.objects.get().name == "Rao, Asha second line"  # whitespace collapsed as the services do
    assert [(bad.number, bad.line, bad.errors[0][0]) for bad in result.bad_rows] == [(2, 4, "phone")]


def test_a_duplicate_within_the_file_is_reported_and_imported_once():
    data = b"name,phone,email\nA,+919811111111,a@example.com\nB,098111 11111,\nC,,A@Example.com\n"

    result = contacts_import(rows=open_csv(data))

    assert Contact.objects.count() == 1
    assert [(bad.number, bad.reason) for bad in result.bad_rows] == [
        (2, "phone: Duplicate: row 1 of this file already has this phone."),
        (3, "email: Duplicate: row 1 of this file already has this email."),
    ]


def test_opt_ins_are_only_taken_from_explicit_true_or_false():
    data = b"name,phone,optInWhatsApp,optInSms,optInEmail\nA,+919811111111,,TRUE,\nB,+919822222222,1,,\n"

    result = contacts_import(rows=open_csv(data))

    a = Contact.objects.get()
    assert (a.opt_in_whatsapp, a.opt_in_sms, a.opt_in_email) == (False, True, False)
    assert [(bad.number, bad.errors[0][0]) for bad in result.bad_rows] == [(2, "optInWhatsApp")]


def test_every_bad_row_of_a_large_file_is_reported_across_batches():
    lines = ["name,phone"] + [f"P{i},+9198{i:08d}" if i % 7 else f"P{i},123" for i in range(1, 1001)]

    result = contacts_import(rows=open_csv("\n".join(lines).encode()), batch_size=50)

    assert result.rejected == len([i for i in range(1, 1001) if i % 7 == 0])
    assert result.created + result.rejected == 1000 == Contact.objects.count() + result.rejected
    assert [bad.line for bad in result.bad_rows][:2] == [8, 15]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200), "is not a CSV text file"),
        (b"name,phone\nJos\xe9,+919811111111\n", "is not a CSV text file"),
        (b"Lorem ipsum dolor sit amet consectetur adipiscing elit sed do\nmore prose\n", "does not look like a CSV"),
        (b"name,mobile\nAsha,+919811111111\n", "Unknown column(s) 'mobile'"),
    ],
)
def test_a_file_that_cannot_be_imported_is_refused_before_any_row_is_written(data, message):
    with pytest.raises(ImportFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        open_csv(data)
    assert not Contact.objects.exists()


def test_a_file_over_the_limit_is_refused_by_its_size(settings):
    settings.CONTACTS_IMPORT_MAX_BYTES = 2048

    with pytest.raises(ImportFileError, match="the limit is 2,048 bytes"):
        open_csv(b"name,phone\n" + b"A,+919811111111\n" * 200)
