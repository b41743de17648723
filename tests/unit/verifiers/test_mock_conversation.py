"""The mock API's state across one conversation, on real public catalogs: what a call created is
there for the later calls, what it deleted is gone; what each tool does is read from the
catalog; single calls answer as before; over HTTP a header names the conversation."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import httpx
import pytest

from service.api.server import BackgroundServer
from service.mock_http import CONVERSATION_HEADER, mock_app
from unified.catalogs import load_catalog
from unified.model import Tool, ToolCall
from verifiers.mock_api import MockApi
from verifiers.mock_conversation import MockConversation
from verifiers.resources import Action, Resources, tool_shape

ROOT = Path(__file__).resolve().parents[3]
EXPANDED = ROOT / "tests" / "data" / "openapi" / "oai-v3.0-petstore-expanded.yaml"
SWAGGER2 = ROOT / "tests" / "data" / "openapi" / "swagger-codegen-v2.0-petstore.yaml"
TRAVEL = ROOT / "examples" / "travel_api.yaml"
RESTAURANT = ROOT / "tests" / "data" / "functions" / "openai_responses_tools.json"


@cache
def api_of(path: Path) -> MockApi:
    return MockApi(load_catalog(path).tools)


def call(tool: str, **arguments: object) -> ToolCall:
    return ToolCall(name=tool, arguments=arguments)


def test_create_then_get_the_created_id_then_delete_then_get_fails() -> None:
    conversation = MockConversation(api_of(EXPANDED))
    created = conversation.call(call("addPet", name="Rex", tag="dog"))
    assert created.ok and created.body["name"] == "Rex"
    pet_id = created.body["id"]
    read = conversation.call(call("find_pet_by_id", id=pet_id))
    assert read.ok and read.body == {"id": pet_id, "name": "Rex", "tag": "dog"}
    deleted = conversation.call(call("deletePet", id=pet_id))
    assert deleted.ok
    gone = conversation.call(call("find_pet_by_id", id=pet_id), 0)
    assert (gone.status, gone.reason) == (404, "resource_not_found")
    assert gone.detail == (
        f"call 0 ('find_pet_by_id'): argument 'id' names the pet '{pet_id}', deleted by a call "
        "of 'deletePet' earlier in this conversation; it is gone"
    )
    assert gone.body == {
        "error": {"reason": "resource_not_found", "detail": gone.detail, "tool": "find_pet_by_id"}
    }
    again = conversation.call(call("deletePet", id=pet_id))
    assert (again.status, again.reason) == (404, "resource_not_found")


def test_a_single_call_and_calls_about_untouched_items_answer_as_the_stateless_mock() -> None:
    api = api_of(EXPANDED)
    conversation = MockConversation(api)
    created = conversation.call(call("addPet", name="Rex", tag="dog"))
    assert created.body == api.call(call("addPet", name="Rex", tag="dog")).body
    other = call("find_pet_by_id", id=created.body["id"] + 1)
    assert conversation.call(other).body == api.call(other).body
    conversation.call(call("deletePet", id=created.body["id"]))
    # The API itself keeps no state: a deleted pet is only gone in the conversation that
    # deleted it.
    alone = api.call(call("find_pet_by_id", id=created.body["id"]))
    assert alone.ok and alone.body["id"] == created.body["id"]
    assert MockConversation(api).call(call("find_pet_by_id", id=created.body["id"])).ok


def test_the_same_create_twice_makes_two_items_the_same_way_every_time() -> None:
    def two_pets() -> list[int]:
        conversation = MockConversation(api_of(EXPANDED))
        return [conversation.call(call("addPet", name="Rex")).body["id"] for _ in range(2)]

    first, second = two_pets()
    assert first != second
    assert two_pets() == [first, second]


def test_an_update_is_what_later_reads_return_and_a_created_user_is_found_by_name() -> None:
    conversation = MockConversation(api_of(SWAGGER2))
    made = conversation.call(call("createUser", username="ana", firstName="Ana", lastName="Lima"))
    assert made.ok
    user = conversation.call(call("getUserByName", username="ana")).body
    assert (user["username"], user["firstName"], user["lastName"]) == ("ana", "Ana", "Lima")
    # PUT /user/{username} takes the user as its whole body: its fields are the user's.
    renamed = call("updateUser", username="ana", body={"username": "ana", "firstName": "Anna"})
    assert conversation.call(renamed).ok
    user = conversation.call(call("getUserByName", username="ana")).body
    assert (user["firstName"], user["lastName"], "body" in user) == ("Anna", "Lima", False)
    assert conversation.call(call("updatePetWithForm", petId=7, name="Rex", status="sold")).ok
    pet = conversation.call(call("getPetById", petId=7)).body
    assert (pet["name"], pet["status"]) == ("Rex", "sold")


def test_a_deleted_item_is_gone_for_every_call_that_names_it() -> None:
    conversation = MockConversation(api_of(SWAGGER2))
    assert conversation.call(call("deletePet", petId=5, api_key="k")).ok
    photo = conversation.call(call("uploadFile", petId=5, additionalMetadata="front"))
    order = conversation.call(call("placeOrder", petId=5, quantity=1))
    assert [(photo.status, photo.reason), (order.status, order.reason)] == [
        (404, "resource_not_found"),
        (404, "resource_not_found"),
    ]
    assert order.detail is not None and "argument 'petId' names the pet '5'" in order.detail
    assert conversation.call(call("placeOrder", petId=6, quantity=1)).ok


def test_function_list_tools_go_by_the_verb_of_their_names() -> None:
    conversation = MockConversation(api_of(RESTAURANT))
    booked = conversation.call(
        call("create_reservation", guest_name="Ana", date="2025-05-03", time="19:00", party_size=4)
    )
    reservation = booked.body["result"]["id"]
    assert conversation.call(call("cancel_reservation", reservation_id=reservation)).ok
    twice = conversation.call(call("cancel_reservation", reservation_id=reservation))
    assert (twice.status, twice.reason) == (404, "resource_not_found")


def test_what_each_tool_does_is_read_from_method_and_path_or_from_its_name() -> None:
    shapes = Resources(load_catalog(SWAGGER2).tools).shapes
    assert {name: (s.action, s.kind, s.key) for name, s in shapes.items()} == {
        "addPet": (Action.create, "pet", None),
        "updatePet": (Action.update, "pet", "id"),
        "findPetsByStatus": (Action.other, "findbystatus", None),
        "findPetsByTags": (Action.other, "findbytag", None),
        "getPetById": (Action.read, "pet", "petId"),
        "updatePetWithForm": (Action.update, "pet", "petId"),
        "deletePet": (Action.delete, "pet", "petId"),
        "uploadFile": (Action.create, "uploadimage", None),
        "getInventory": (Action.other, "inventory", None),
        "placeOrder": (Action.create, "order", None),
        "getOrderById": (Action.read, "order", "orderId"),
        "deleteOrder": (Action.delete, "order", "orderId"),
        "createUser": (Action.create, "user", None),
        "createUsersWithArrayInput": (Action.create, "createwitharray", None),
        "createUsersWithListInput": (Action.create, "createwithlist", None),
        "loginUser": (Action.other, "login", None),
        "logoutUser": (Action.other, "logout", None),
        "getUserByName": (Action.read, "user", "username"),
        "updateUser": (Action.update, "user", "username"),
        "deleteUser": (Action.delete, "user", "username"),
    }
    assert shapes["placeOrder"].references == {"petId": "pet"}
    travel = {tool.name: tool_shape(tool).action for tool in load_catalog(TRAVEL).tools}
    assert travel["search_flights"] is Action.other  # POST /flights/search creates nothing


@pytest.mark.parametrize(
    ("name", "arguments", "action", "kind", "key"),
    [
        ("getPetById", ["petId"], Action.read, "pet", "petId"),
        ("cancel_booking", ["booking_id", "reason"], Action.delete, "booking", "booking_id"),
        ("bookings.update", ["id", "seat"], Action.update, "booking", "id"),
        ("delete_file", ["path"], Action.delete, "file", "path"),
        ("create_invoice", ["customer_id", "amount"], Action.create, "invoice", None),
        ("get_weather_details", ["city", "unit"], Action.other, "weather", None),
        ("search_flights", ["origin"], Action.other, None, None),
    ],
)
def test_name_verbs(
    name: str, arguments: list[str], action: Action, kind: str | None, key: str | None
) -> None:
    tool = Tool(
        name=name,
        parameters={
            "type": "object",
            "properties": {argument: {"type": "string"} for argument in arguments},
            "required": arguments[:1] if len(arguments) == 1 else [],
        },
    )
    shape = tool_shape(tool)
    assert (shape.action, shape.kind, shape.key) == (action, kind, key)


def test_a_created_items_key_may_be_an_id_field_of_another_kind() -> None:
    book = Tool(
        name="book_flight",
        parameters={"type": "object", "properties": {"flight": {"type": "string"}}},
        response={
            "type": "object",
            "properties": {"booking_id": {"type": "string", "pattern": "^B[0-9]{6}$"}},
            "required": ["booking_id"],
        },
    )
    cancel = Tool(
        name="cancel_booking",
        parameters={
            "type": "object",
            "properties": {"booking_id": {"type": "string"}},
            "required": ["booking_id"],
        },
    )
    conversation = MockConversation(MockApi([book, cancel]))
    booking = conversation.call(call("book_flight", flight="FR8341")).body["booking_id"]
    conversation.turn = 2
    assert conversation.call(call("cancel_booking", booking_id=booking), 0).ok
    conversation.turn = 3
    again = conversation.call(call("cancel_booking", booking_id=booking), 0)
    assert again.reason == "resource_not_found"
    assert again.detail is not None
    assert "deleted by call 0 ('cancel_booking') of turn 2" in again.detail


# --- over HTTP --------------------------------------------------------------------------------


def test_requests_with_one_conversation_header_share_its_state() -> None:
    app = mock_app(MockApi(load_catalog(EXPANDED).tools))
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url) as http:  # type: ignore[arg-type]
        one = {CONVERSATION_HEADER: "one"}
        created = http.post("/pets", json={"name": "Rex", "tag": "dog"}, headers=one)
        assert created.status_code == 200
        pet_id = created.json()["id"]
        shown = http.get(f"/pets/{pet_id}", headers=one)
        assert shown.json() == {"id": pet_id, "name": "Rex", "tag": "dog"}
        assert http.delete(f"/pets/{pet_id}", headers=one).status_code == 200
        gone = http.get(f"/pets/{pet_id}", headers=one)
        assert gone.status_code == 404
        assert gone.json()["error"]["reason"] == "resource_not_found"
        # Another conversation, and a request without the header, never saw the deletion.
        assert http.get(f"/pets/{pet_id}", headers={CONVERSATION_HEADER: "two"}).status_code == 200
        assert http.get(f"/pets/{pet_id}").status_code == 200
        generic = http.post("/tools/find_pet_by_id", json={"id": pet_id}, headers=one)
        assert generic.status_code == 404
