from kfp import dsl

from .math import add_numbers


@dsl.component(
    base_image="python:3.11",
    target_image="registry.local/my-component:v1",
    packages_to_install=["six"],
)
def add(a: int, b: int) -> int:
    return add_numbers(a, b)
