"""Names for the demo's members: a mix a city neighbourhood might have."""

from __future__ import annotations

FIRST_NAMES: tuple[str, ...] = (
    "Amara", "Ben", "Chloe", "Dev", "Esther", "Femi", "Grace", "Hamza", "Isla", "Jonah",
    "Kemi", "Liam", "Maya", "Nikhil", "Olivia", "Priya", "Quentin", "Rosa", "Samir", "Tess",
    "Uche", "Vera", "Wei", "Ximena", "Yusuf", "Zara", "Aisha", "Bram", "Carmen", "Darius",
    "Elif", "Finn", "Gita", "Hugo", "Ines", "Jamal", "Kasia", "Leon", "Mei", "Noor",
    "Oscar", "Paula", "Rafael", "Sana", "Tomasz", "Uma", "Viktor", "Wren", "Yara", "Zoltan",
    "Alice", "Bilal", "Cora", "Dmitri", "Ella", "Farah", "Gus", "Hana", "Ivan", "Jade",
    "Kofi", "Lena", "Marco", "Nadia", "Owen", "Pia", "Ravi", "Sofia", "Theo", "Ada",
)  # fmt: skip

SURNAMES: tuple[str, ...] = (
    "Okafor", "Patel", "Nowak", "Hughes", "Adeyemi", "Khan", "Murphy", "Silva", "Chen",
    "O'Brien", "Rossi", "Mensah", "Kowalski", "Evans", "Haddad", "Nguyen", "Fraser",
    "Begum", "Costa", "Lindqvist", "Mwangi", "Petrov", "Ahmed", "Campbell", "Demir",
    "Garcia", "Ito", "Jones", "Kaur", "Lewis", "Moreau", "Novak", "Owusu", "Park",
    "Quinn", "Reyes", "Singh", "Taylor", "Usman", "Varga", "Walsh", "Yilmaz", "Zielinski",
    "Bailey", "Doyle", "Ellis", "Fischer", "Grant", "Hassan", "Ibrahim", "Jensen",
)  # fmt: skip

BIOS: tuple[str, ...] = (
    "Happy to lend a hand at weekends.",
    "Retired carpenter; ask me about joints and glue.",
    "Two kids, one allotment, never enough time.",
    "I fix bikes and bake bread.",
    "New to the area and keen to meet neighbours.",
    "Nurse on night shifts, free most afternoons.",
    "Student, good with computers, short on tools.",
    "Grower of far too many tomatoes.",
    "I knit, I sew, I mend.",
    "Cycling everywhere since 2009.",
    "",
    "",
)
