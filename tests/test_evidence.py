"""The objects a question's answer is read from (`rexlib.program.evidence`), on programs in GQA's own forms."""

from rexlib.gqa import parse_program
from rexlib.program.evidence import answer_objects


def step(operation, argument, *dependencies):
    return {"operation": operation, "argument": argument, "dependencies": list(dependencies)}


def test_a_relational_query_reads_the_related_object_not_the_one_the_question_names():
    # "What is the salad on top of?": the answer (table) is the relate step's object, not the salad.
    program = parse_program([step("select", "salad (1000103)"), step("relate", "_,on top of,o (1000102)", 0),
                             step("query", "name", 1)])
    assert answer_objects(program) == ("1000102",)


def test_filters_and_verifies_are_walked_through_to_the_objects_they_test():
    # "Is the white cup on the left made of wood?": select -> filter -> verify; GQA's trailing space kept.
    program = parse_program([step("select", "cup (7) "), step("filter color", "white", 0),
                             step("verify material", "wood", 1)])
    assert answer_objects(program) == ("7",)


def test_a_relation_check_reads_both_of_its_objects():
    # "Is the cup to the left of the table?": verify rel names the table itself; the cup comes from select.
    program = parse_program([step("select", "cup (7)"), step("verify rel", "table,to the left of,s (9)", 0)])
    assert answer_objects(program) == ("9", "7")


def test_a_logical_question_reads_both_branches_and_an_absent_object_adds_none():
    # "Is there a cat or a dog on the bed?": relate ... (-) finds no cat; the dog branch finds object 4.
    program = parse_program([step("select", "bed (2)"), step("relate", "cat,on,s (-)", 0), step("exist", "?", 1),
                             step("select", "bed (2) "), step("relate", "dog,on,s (4)", 3), step("exist", "?", 4),
                             step("or", "", 2, 5)])
    assert answer_objects(program) == ("4",)


def test_comparing_two_objects_reads_each_once():
    program = parse_program([step("select", "man (5)"), step("select", "woman (6) "),
                             step("same color", "", 0, 1)])
    assert answer_objects(program) == ("5", "6")
    assert answer_objects(()) == ()
