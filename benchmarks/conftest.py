import pytest


def pytest_addoption(parser):
    parser.addoption("--device", default="cpu", help="device to benchmark on (cpu, cuda)")
    parser.addoption("--quick", action="store_true", help="fewer option combinations and rounds")
    parser.addoption("--variants", default=None, help="comma-separated variant names (default: all registered)")


@pytest.fixture
def device(request):
    return request.config.getoption("--device")


@pytest.fixture
def quick(request):
    return request.config.getoption("--quick")
