// The compiled part of iota2's OTB backend: a pybind11 module over OTB's application engine (OTB 8.1).
//
// Built by `iota2 otb build` (iota2/plugins/otb_backend/build.py) into the module `_otb_binding`. The Python layer
// `iota2.plugins.otb_backend.otbApplication` wraps it into the classic `otbApplication` API; this file only exposes
// what needs C++: the registry, the parameters of an application, images passed between applications in memory and
// numpy arrays in and out of images. OTB's errors (itk::ExceptionObject) become `OtbError` with OTB's message.

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <complex>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "itkMacro.h"
#include "itkMultiThreader.h"
#include "otbImage.h"
#include "otbVectorImage.h"
#include "otbWrapperApplication.h"
#include "otbWrapperApplicationRegistry.h"

#ifdef IOTA2_OTB_OPENCV
namespace cv {
void setRNGSeed(int seed);  // OpenCV's core (the random generator of OTB's OpenCV classifiers), thread-local
}
#endif

namespace py = pybind11;
using otb::Wrapper::Application;
using otb::Wrapper::ApplicationRegistry;
using ImageBase = otb::Wrapper::ImageBaseType;

namespace {

// An image handed between applications (an application's output, or a numpy array imported as an image).
struct ImageHandle {
  itk::SmartPointer<ImageBase> image;
};

// One OTB application.
struct App {
  Application::Pointer app;
};

Application* checked(const App& self) {
  if (self.app.IsNull()) throw std::runtime_error("the OTB application was released");
  return self.app.GetPointer();
}

// ----------------------------------------------------------------------------- numpy array -> image
template <typename T>
ImageHandle import_array(py::array array, const std::vector<double>& origin, const std::vector<double>& spacing,
                         const std::string& wkt) {
  auto typed = py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(array);
  if (!typed) throw std::runtime_error("the array cannot be read as a C-contiguous array");
  if (typed.ndim() != 3) throw std::runtime_error("expected an array (rows, cols, bands)");
  const auto rows = static_cast<itk::SizeValueType>(typed.shape(0));
  const auto cols = static_cast<itk::SizeValueType>(typed.shape(1));
  const auto bands = static_cast<unsigned int>(typed.shape(2));
  using ImageType = otb::VectorImage<T, 2>;
  auto image = ImageType::New();
  typename ImageType::RegionType region;
  typename ImageType::SizeType size;
  size[0] = cols;
  size[1] = rows;
  region.SetSize(size);
  image->SetRegions(region);
  image->SetNumberOfComponentsPerPixel(bands);
  image->Allocate();
  std::memcpy(image->GetBufferPointer(), typed.data(), sizeof(T) * rows * cols * bands);
  typename ImageType::PointType point;
  point[0] = origin.at(0);
  point[1] = origin.at(1);
  image->SetOrigin(point);
  typename ImageType::SpacingType step;
  step[0] = spacing.at(0);
  step[1] = spacing.at(1);
  image->SetSignedSpacing(step);
  if (!wkt.empty()) image->SetProjectionRef(wkt);
  ImageHandle handle;
  handle.image = image.GetPointer();
  return handle;
}

ImageHandle import_any(py::array array, const std::vector<double>& origin, const std::vector<double>& spacing,
                       const std::string& wkt) {
  const char kind = array.dtype().kind();
  const auto itemsize = array.dtype().itemsize();
  if (kind == 'u' && itemsize == 1) return import_array<unsigned char>(array, origin, spacing, wkt);
  if (kind == 'i' && itemsize == 2) return import_array<short>(array, origin, spacing, wkt);
  if (kind == 'u' && itemsize == 2) return import_array<unsigned short>(array, origin, spacing, wkt);
  if (kind == 'i' && itemsize == 4) return import_array<int>(array, origin, spacing, wkt);
  if (kind == 'u' && itemsize == 4) return import_array<unsigned int>(array, origin, spacing, wkt);
  if (kind == 'f' && itemsize == 4) return import_array<float>(array, origin, spacing, wkt);
  if (kind == 'f' && itemsize == 8) return import_array<double>(array, origin, spacing, wkt);
  throw std::runtime_error("unsupported array type " + std::string(py::str(array.dtype())) +
                           " (uint8, int16, uint16, int32, uint32, float32 and float64 are)");
}

// ----------------------------------------------------------------------------- image -> numpy array
template <typename T, typename ImageType>
py::array copy_out(ImageType* image, unsigned int bands) {
  const auto region = image->GetBufferedRegion();
  const auto cols = region.GetSize(0);
  const auto rows = region.GetSize(1);
  py::array_t<T> out({static_cast<py::ssize_t>(rows), static_cast<py::ssize_t>(cols), static_cast<py::ssize_t>(bands)});
  std::memcpy(out.mutable_data(), image->GetBufferPointer(), sizeof(T) * rows * cols * bands);
  return std::move(out);
}

template <typename T>
bool try_copy(ImageBase* base, py::array& out) {
  if (auto* vector = dynamic_cast<otb::VectorImage<T, 2>*>(base)) {
    out = copy_out<T>(vector, vector->GetNumberOfComponentsPerPixel());
    return true;
  }
  if (auto* scalar = dynamic_cast<otb::Image<T, 2>*>(base)) {
    out = copy_out<T>(scalar, 1);
    return true;
  }
  return false;
}

// Compute the whole image (releasing the GIL) and copy it into a new (rows, cols, bands) array.
py::array image_to_array(ImageBase* base) {
  {
    py::gil_scoped_release release;
    base->UpdateOutputInformation();
    base->SetRequestedRegionToLargestPossibleRegion();
    base->PropagateRequestedRegion();
    base->UpdateOutputData();
  }
  py::array out;
  if (try_copy<unsigned char>(base, out) || try_copy<short>(base, out) || try_copy<unsigned short>(base, out) ||
      try_copy<int>(base, out) || try_copy<unsigned int>(base, out) || try_copy<float>(base, out) ||
      try_copy<double>(base, out) || try_copy<std::complex<float>>(base, out) ||
      try_copy<std::complex<double>>(base, out))
    return out;
  throw std::runtime_error(std::string("unsupported image type ") + base->GetNameOfClass());
}

std::string projection_of(ImageBase* base) {
  if (auto* commons = dynamic_cast<otb::ImageCommons*>(base)) return commons->GetProjectionRef();
  return "";
}

ImageBase* output_image(App& self, const std::string& key) {
  ImageBase* image = checked(self)->GetParameterOutputImage(key);
  if (image == nullptr)
    throw std::runtime_error("output image '" + key + "' of " + checked(self)->GetName() +
                             " is not computed yet: call Execute() first");
  return image;
}

}  // namespace

PYBIND11_MODULE(_otb_binding, m) {
  m.doc() = "pybind11 binding over OTB's application engine (used through iota2.plugins.otb_backend.otbApplication)";

  static py::exception<itk::ExceptionObject> otb_error(m, "OtbError", PyExc_RuntimeError);
  py::register_exception_translator([](std::exception_ptr pointer) {
    try {
      if (pointer) std::rethrow_exception(pointer);
    } catch (const itk::ExceptionObject& exc) {
      std::string description = exc.GetDescription();
      otb_error(description.empty() ? exc.what() : description.c_str());
    }
  });

  m.def("set_application_path", &ApplicationRegistry::SetApplicationPath, py::arg("path"));
  m.def("get_application_path", &ApplicationRegistry::GetApplicationPath);
  m.def("available_applications", []() { return ApplicationRegistry::GetAvailableApplications(true); });
  m.def("set_threads", [](int threads) { itk::MultiThreader::SetGlobalDefaultNumberOfThreads(threads); },
        py::arg("threads"), "ITK's default number of threads of every filter created afterwards");
  m.def("seed_random", [](int seed) {
    std::srand(static_cast<unsigned int>(seed));  // libsvm's probability estimates draw with rand()
#ifdef IOTA2_OTB_OPENCV
    cv::setRNGSeed(seed);
#endif
  }, py::arg("seed"), "Seed the C library's and this thread's OpenCV random generators (OTB's -rand seeds neither)");
  m.def("get_threads", []() { return itk::MultiThreader::GetGlobalDefaultNumberOfThreads(); });
  m.def("create_application", [](const std::string& name) {
    App self;
    self.app = ApplicationRegistry::CreateApplication(name, true);
    if (self.app.IsNull()) throw std::runtime_error("no OTB application named '" + name + "'");
    return self;
  }, py::arg("name"));
  m.def("import_array", &import_any, py::arg("array"), py::arg("origin"), py::arg("spacing"), py::arg("wkt"),
        "A (rows, cols, bands) array as an OTB vector image (copied), with the origin of the first pixel's centre, "
        "the signed spacing and a projection WKT");

  py::class_<ImageHandle>(m, "Image")
      .def("to_array", [](ImageHandle& self) { return image_to_array(self.image.GetPointer()); })
      .def("origin", [](ImageHandle& self) {
        self.image->UpdateOutputInformation();
        auto origin = self.image->GetOrigin();
        return std::vector<double>{origin[0], origin[1]};
      })
      .def("spacing", [](ImageHandle& self) {
        self.image->UpdateOutputInformation();
        auto spacing = otb::internal::GetSignedSpacing(self.image.GetPointer());
        return std::vector<double>{spacing[0], spacing[1]};
      })
      .def("size", [](ImageHandle& self) {
        self.image->UpdateOutputInformation();
        auto size = self.image->GetLargestPossibleRegion().GetSize();
        return std::vector<unsigned long>{size[0], size[1]};
      })
      .def("bands", [](ImageHandle& self) {
        self.image->UpdateOutputInformation();
        return self.image->GetNumberOfComponentsPerPixel();
      })
      .def("projection", [](ImageHandle& self) {
        self.image->UpdateOutputInformation();
        return projection_of(self.image.GetPointer());
      });

  py::class_<App>(m, "App")
      .def("name", [](App& self) { return std::string(checked(self)->GetName()); })
      .def("description", [](App& self) { return std::string(checked(self)->GetDescription()); })
      .def("long_description", [](App& self) { return std::string(checked(self)->GetDocLongDescription()); })
      .def("keys", [](App& self, bool recursive) { return checked(self)->GetParametersKeys(recursive); },
           py::arg("recursive") = true)
      .def("parameter_type", [](App& self, const std::string& key) {
        return static_cast<int>(checked(self)->GetParameterType(key));
      })
      .def("parameter_name", [](App& self, const std::string& key) { return checked(self)->GetParameterName(key); })
      .def("parameter_description", [](App& self, const std::string& key) {
        return checked(self)->GetParameterDescription(key);
      })
      .def("choice_keys", [](App& self, const std::string& key) { return checked(self)->GetChoiceKeys(key); })
      .def("has_value", [](App& self, const std::string& key) { return checked(self)->HasValue(key); })
      .def("is_mandatory", [](App& self, const std::string& key) { return checked(self)->IsMandatory(key); })
      .def("is_enabled", [](App& self, const std::string& key) { return checked(self)->IsParameterEnabled(key); })
      .def("role", [](App& self, const std::string& key) {
        return static_cast<int>(checked(self)->GetParameterRole(key));
      })
      .def("update_parameters", [](App& self) { checked(self)->UpdateParameters(); })
      .def("set_string", [](App& self, const std::string& key, const std::string& value) {
        checked(self)->SetParameterString(key, value);
      })
      .def("set_string_list", [](App& self, const std::string& key, const std::vector<std::string>& values) {
        checked(self)->SetParameterStringList(key, values);
      })
      .def("set_int", [](App& self, const std::string& key, int value) { checked(self)->SetParameterInt(key, value); })
      .def("set_float", [](App& self, const std::string& key, float value) {
        checked(self)->SetParameterFloat(key, value);
      })
      .def("set_double", [](App& self, const std::string& key, double value) {
        checked(self)->SetParameterDouble(key, value);
      })
      .def("enable", [](App& self, const std::string& key) { checked(self)->EnableParameter(key); })
      .def("clear_value", [](App& self, const std::string& key) { checked(self)->ClearValue(key); })
      .def("get_string", [](App& self, const std::string& key) { return checked(self)->GetParameterString(key); })
      .def("get_as_string", [](App& self, const std::string& key) {
        return checked(self)->GetParameterAsString(key);
      })
      .def("get_string_list", [](App& self, const std::string& key) {
        return checked(self)->GetParameterStringList(key);
      })
      .def("get_int", [](App& self, const std::string& key) { return checked(self)->GetParameterInt(key); })
      .def("get_float", [](App& self, const std::string& key) { return checked(self)->GetParameterFloat(key); })
      .def("get_double", [](App& self, const std::string& key) { return checked(self)->GetParameterDouble(key); })
      .def("set_output_pixel_type", [](App& self, const std::string& key, int pixel_type) {
        checked(self)->SetParameterOutputImagePixelType(key, static_cast<otb::Wrapper::ImagePixelType>(pixel_type));
      })
      .def("set_input_image", [](App& self, const std::string& key, ImageHandle& image) {
        checked(self)->SetParameterInputImage(key, image.image.GetPointer());
      })
      .def("add_input_image", [](App& self, const std::string& key, ImageHandle& image) {
        checked(self)->AddImageToParameterInputImageList(key, image.image.GetPointer());
      })
      .def("output_image", [](App& self, const std::string& key) {
        ImageHandle handle;
        handle.image = output_image(self, key);
        return handle;
      })
      .def("connect_image", [](App& self, const std::string& in, App& other, const std::string& out) {
        return checked(self)->ConnectImage(in, checked(other), out);
      })
      .def("propagate_connect_mode", [](App& self, bool in_memory) {
        checked(self)->PropagateConnectMode(in_memory);
      })
      .def("execute", [](App& self) {
        Application* app = checked(self);
        py::gil_scoped_release release;
        return app->Execute();
      })
      .def("execute_and_write_output", [](App& self) {
        Application* app = checked(self);
        py::gil_scoped_release release;
        return app->ExecuteAndWriteOutput();
      })
      .def("release", [](App& self) { self.app = nullptr; });
}
