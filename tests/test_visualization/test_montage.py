import cv2
import numpy as np

from mmlesion.visualization import input_to_display, multislice_row, save_montage


def _to_input(hu):
    return (np.clip(hu, -1024, 3071) + 1024) / 4095 * 255


def test_input_to_display_rewindows_hu():
    hu = np.array([[-1000, -175, 50, 275, 1000]], np.float32)
    disp = input_to_display(_to_input(hu), display_window_hu=(-175, 275))
    np.testing.assert_array_equal(disp[0], [0, 0, 128, 255, 255])


def test_input_to_display_of_a_composite_window():
    from mmlesion.datasets.slice_sampling import apply_window
    wins = [(-1024, 3071), (-1000, 200), (-160, 240)]
    hu = np.array([[-1000, -175, 50, 275, 1000]], np.float32)
    disp = input_to_display(apply_window(hu, wins), input_window_hu=wins,
                            display_window_hu=(-175, 275))
    # 50 HU is 127.5 on the display: float32 round-trips may land on either side
    np.testing.assert_allclose(disp[0], [0, 0, 127.5, 255, 255], atol=0.5)


def test_row_layout_and_box_on_key_channel(tmp_path):
    image = np.repeat(_to_input(np.full((64, 64, 1), -175.0)), 9, axis=2)  # black at display window
    row = multislice_row(image, boxes=np.array([[16, 16, 48, 48]]), tile_px=64)
    assert row.shape == (64, 9 * 64, 3)
    key_tile = row[:, 4 * 64:5 * 64]
    other_tile = row[:, 3 * 64:4 * 64]
    # the box outline is drawn only on the key channel, in the lesion colour (BGR crimson)
    assert tuple(key_tile[16, 30]) == (60, 20, 220)
    assert tuple(other_tile[16, 30]) == (0, 0, 0)
    path = tmp_path / 'm.png'
    save_montage(str(path), [row, row[:, :128]])
    back = cv2.imread(str(path))
    assert back.shape == (2 * 66, 9 * 64, 3)
