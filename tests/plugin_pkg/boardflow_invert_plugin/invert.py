"""plugin/invert-image turns an image into its negative; plugin/grayscale-image drops its colour (both Pillow)."""

from __future__ import annotations

from PIL import Image, ImageOps
from pydantic import BaseModel, Field

from generators.artifacts import ImageArtifact
from generators.base import BaseGenerator


class ImageInput(BaseModel):
    image: ImageArtifact = Field(description="The image to change.")


class ImageOutput(BaseModel):
    image: ImageArtifact


class InvertImage(BaseGenerator):
    name = "plugin/invert-image"
    artifact_type = "image"
    description = "Invert an image's colours (a negative)."
    provider = "plugin"

    def get_input_schema(self) -> type[BaseModel]:
        return ImageInput

    def get_output_schema(self) -> type[BaseModel]:
        return ImageOutput

    def change(self, img: Image.Image) -> Image.Image:
        return ImageOps.invert(img.convert("RGB"))

    async def generate(self, inputs: ImageInput, context) -> ImageOutput:
        with Image.open(await context.resolve_artifact(inputs.image)) as img:
            changed = self.change(img)
        out = context.temp_path(".png")
        changed.save(out)
        return ImageOutput(image=await context.store_image_result(out))


class GrayscaleImage(InvertImage):
    name = "plugin/grayscale-image"
    description = "Drop an image's colour."

    def change(self, img: Image.Image) -> Image.Image:
        return ImageOps.grayscale(img)


def more_generators(registry) -> list[BaseGenerator]:
    """The entry-point form that receives the registry and returns generators to add."""
    return [GrayscaleImage()]
