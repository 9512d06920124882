# ruff: noqa: E501  (a table of sample texts reads best one entry a line)
"""What members of each kind of community post: (kind, category, title, description).

Categories are the default slugs of `node.domain.categories`. Every community
draws from its own kind's list and from `EVERYDAY`, what neighbours anywhere
offer and need.
"""

from __future__ import annotations

from typing import Final

Template = tuple[str, str, str, str]

TOOL_LIBRARY: Final[tuple[Template, ...]] = (
    ("offer", "tools", "Cordless drill with two batteries", "18 V, charger and a box of bits. Pick up evenings."),
    ("offer", "tools", "Aluminium extension ladder (6 m)", "Fits on a car roof rack; I can help carry it."),
    ("offer", "tools", "Circular saw with guide rail", "Sharp blade, safety glasses included. Please return clean."),
    ("offer", "tools", "Tile cutter", "Manual cutter, good for floor tiles up to 60 cm."),
    ("offer", "tools", "Stud finder and laser level", "For hanging shelves straight the first time."),
    ("offer", "tools", "Pressure washer", "Patios, bins, bikes. Hose adaptor included."),
    ("offer", "garden", "Petrol lawnmower", "Self-propelled, takes a few pulls to start."),
    ("offer", "garden", "Hedge trimmer", "Electric, 60 cm blade, 15 m extension lead."),
    ("offer", "tools", "Wallpaper steamer", "Makes stripping old paper a one-day job."),
    ("offer", "tools", "Socket set (metric and imperial)", "120 pieces in a case."),
    ("offer", "kitchen", "Stand mixer", "For big bakes; comes with dough hook."),
    ("offer", "kitchen", "Preserving pan and jars", "Jam season is coming: 9 litre pan, 20 jars."),
    ("offer", "electronics", "Projector and screen", "Film nights, presentations, garden cinema."),
    ("offer", "tools", "Carpet cleaner", "Bring your own detergent."),
    ("offer", "tools", "Workbench with vice", "Folding; fits in a hatchback."),
    ("offer", "bikes", "Bike repair stand", "Makes tuning a bike much easier on the back."),
    ("offer", "tools", "Sewing machine", "Singer, straight and zigzag stitch, spare needles."),
    ("offer", "garden", "Wheelbarrow", "Solid tyre, never goes flat."),
    ("need", "tools", "Borrow a jigsaw for a weekend", "Cutting a worktop for the sink."),
    ("need", "tools", "Looking for a long ladder", "Gutter clearing, needs to reach two storeys."),
    ("need", "tools", "Angle grinder for an afternoon", "Cutting an old padlock off the shed."),
    ("need", "garden", "Rotavator for an allotment", "Breaking new ground on plot 14."),
    ("need", "tools", "Dehumidifier for a damp back room", "A week or two would help a lot."),
    ("need", "skills", "Someone to show me how to use a router", "I have the tool, not the courage."),
)  # fmt: skip

MUTUAL_AID: Final[tuple[Template, ...]] = (
    ("offer", "food", "Weekly veg box share", "We get more than we eat: half a box every Thursday."),
    ("offer", "food", "Batch-cooked meals for new parents", "Vegetarian, freezer-friendly, four portions."),
    ("offer", "transport", "Lifts to hospital appointments", "Weekday mornings, car has room for a wheelchair."),
    ("offer", "childcare", "School pick-up on Wednesdays", "I collect my own two from St Mary's anyway."),
    ("offer", "skills", "Help filling in benefit forms", "Patient, discreet, done it many times."),
    ("offer", "skills", "Shopping for anyone isolating", "Tell me the list, I bring it to your door."),
    ("offer", "clothing", "Winter coats, children's sizes", "Ages 4 to 10, washed and ready."),
    ("offer", "housing", "Spare room for a week", "For someone between places; ask about dates."),
    ("offer", "food", "Bread from the bakery's end of day", "Collected at 6 pm, shared out by 7."),
    ("offer", "skills", "Phone and tablet help for older neighbours", "Video calls, photos, online banking."),
    ("offer", "kitchen", "Slow cooker, barely used", "Yours to keep."),
    ("offer", "childcare", "Babysitting, evenings", "DBS-checked, two younger siblings of my own."),
    ("offer", "transport", "Van for moving day", "Transit, with me as driver, Saturdays."),
    ("need", "food", "Nappies, size 4", "Running low before payday."),
    ("need", "transport", "Lift to the food bank on Fridays", "Two heavy bags, no car."),
    ("need", "housing", "Somewhere to store boxes for a month", "About ten boxes, dry space please."),
    ("need", "skills", "Help writing a CV", "Returning to work after five years."),
    ("need", "childcare", "Someone to sit with my son after school", "Tuesdays 3 to 5, he's nine."),
    ("need", "clothing", "School uniform, age 11", "Grey trousers and jumpers."),
    ("need", "food", "Cooking lessons for a teenager", "He wants to learn five simple dinners."),
    ("need", "kitchen", "A fridge that works", "Ours died; even an old one would do."),
    ("need", "skills", "Dog walking while I recover", "Two weeks after an operation."),
)  # fmt: skip

TIME_BANK: Final[tuple[Template, ...]] = (
    ("offer", "skills", "Spanish conversation practice", "An hour a week over tea, any level."),
    ("offer", "skills", "Piano lessons for beginners", "Children or adults, I have a keyboard to lend."),
    ("offer", "repairs", "Small plumbing jobs", "Dripping taps, running toilets, blocked traps."),
    ("offer", "skills", "Tax return help", "Self-assessment, an evening at your kitchen table."),
    ("offer", "garden", "Garden tidy-up, two hours", "Weeding, pruning, hauling green waste."),
    ("offer", "skills", "Proofreading and editing", "Letters, essays, applications."),
    ("offer", "repairs", "Flat-pack furniture assembly", "Bring the instructions, I bring the patience."),
    ("offer", "skills", "Yoga for stiff backs", "Gentle, in the community hall, Sunday mornings."),
    ("offer", "electronics", "Laptop tune-up", "Cleanup, backups, a fresh install if needed."),
    ("offer", "childcare", "Homework club helper", "Maths and science up to GCSE."),
    ("offer", "skills", "Haircuts at home", "Trained barber, own kit."),
    ("offer", "skills", "Photography for your event", "Birthdays, small weddings, portraits."),
    ("offer", "repairs", "Painting and decorating", "One room, one weekend."),
    ("offer", "food", "Bread-making workshop", "Sourdough starter to take home."),
    ("need", "skills", "Help with a garden design", "A small yard I want to turn green."),
    ("need", "repairs", "Someone to rehang a door", "It sticks and won't latch."),
    ("need", "skills", "Guitar teacher for a teenager", "Acoustic, beginner, keen."),
    ("need", "skills", "Company for my dad on Thursdays", "He loves chess and old films."),
    ("need", "electronics", "Set up a printer on the home wifi", "Two hours of frustration so far."),
    ("need", "skills", "Translation of a letter from Polish", "Two pages, not urgent."),
    ("need", "transport", "Help moving a piano across the road", "Four strong people, twenty minutes."),
    ("need", "repairs", "Fix a leaking shower seal", "Silicone is peeling at the corner."),
)  # fmt: skip

REPAIR_CAFE: Final[tuple[Template, ...]] = (
    ("offer", "repairs", "Toaster and kettle repairs", "Bring it on Saturday, we'll open it up together."),
    ("offer", "repairs", "Clothes mending table", "Zips, hems, patches and darning."),
    ("offer", "bikes", "Bike fixing session", "Brakes, gears, punctures; parts at cost."),
    ("offer", "electronics", "Phone screen replacements", "You buy the part, I fit it."),
    ("offer", "repairs", "Sharpening knives and scissors", "Whetstones and a steady hand."),
    ("offer", "electronics", "Radio and hi-fi repairs", "Valves to transistors."),
    ("offer", "repairs", "Furniture glueing and regluing", "Wobbly chairs made solid."),
    ("offer", "tools", "Soldering station to borrow", "With fume extractor and solder."),
    ("need", "repairs", "Someone who can fix a vacuum cleaner", "It hums but won't suck."),
    ("need", "electronics", "Replacement charger for an old laptop", "Dell, 19.5 V barrel plug."),
    ("need", "bikes", "Help truing a buckled wheel", "Back wheel, after a kerb."),
    ("need", "repairs", "Leather boot resoling", "Good boots, worn heels."),
    ("need", "skills", "Volunteers for the Saturday repair cafe", "Tea-makers welcome as much as fixers."),
)  # fmt: skip

EVERYDAY: Final[tuple[Template, ...]] = (
    ("offer", "books", "Box of children's books", "Picture books and early readers, about forty."),
    ("offer", "books", "Cookbooks to give away", "Mostly vegetarian, some barely opened."),
    ("offer", "clothing", "Men's suits, size 40", "Two suits, worn to three weddings between them."),
    ("offer", "bikes", "Child seat for a bike", "Rear-mounted, up to 22 kg."),
    ("offer", "kitchen", "Spare crockery set", "Six plates, bowls, mugs."),
    ("offer", "electronics", "Old but working laptop", "Fine for email, homework and video calls."),
    ("offer", "garden", "Tomato and courgette seedlings", "Raised on my windowsill, ready to plant out."),
    ("offer", "housing", "Parking space weekdays", "Off-street, near the station."),
    ("offer", "transport", "Car share to the coast on Sunday", "Two seats free, leaving 9 am."),
    ("offer", "food", "Apples from our tree", "More than we can eat; bring a bag."),
    ("offer", "other", "Moving boxes", "About thirty, flat-packed."),
    ("need", "bikes", "Bike for a ten-year-old", "24-inch wheels, any condition."),
    ("need", "books", "GCSE revision guides", "Maths, biology and English."),
    ("need", "childcare", "Cot and mattress", "For a grandchild's visits."),
    ("need", "electronics", "Working monitor", "For a home office, 22 inches or more."),
    ("need", "kitchen", "Large saucepan for a street party", "Soup for fifty people."),
    ("need", "other", "Folding tables and chairs", "Street party on the 14th."),
    ("need", "garden", "Compost bin", "Any size, happy to collect."),
    ("need", "clothing", "Walking boots, size 6", "For a first Duke of Edinburgh trip."),
)  # fmt: skip

KINDS_OF_COMMUNITY: Final[dict[str, tuple[Template, ...]]] = {
    "tool_library": TOOL_LIBRARY,
    "mutual_aid": MUTUAL_AID,
    "time_bank": TIME_BANK,
    "repair_cafe": REPAIR_CAFE,
}

# Categories where an exchange is mostly someone's time rather than a thing.
TIME_CATEGORIES: Final[frozenset[str]] = frozenset(
    {"skills", "repairs", "childcare", "transport", "garden"}
)

REQUEST_NOTES: Final[tuple[str, ...]] = (
    "Would Saturday morning work?",
    "Thanks so much, this would really help.",
    "I can collect whenever suits you.",
    "Could I have it for the weekend?",
    "Happy to return the favour.",
    "",
)
